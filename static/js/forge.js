// Site-wide behaviour: HTMX sends the CSRF token, and swaps validation errors (4xx) inline.
(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  document.body.addEventListener("htmx:configRequest", (event) => {
    if (meta) event.detail.headers["X-CSRF-Token"] = meta.content;
  });
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "(400|401|402|403|404|409|413|422|429)", swap: true, error: false },
    { code: "[45]..", swap: false, error: true },
  ];
  // <form data-confirm="..."> asks before submitting (delete buttons).
  document.body.addEventListener("submit", (event) => {
    const message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  }, true);
})();
window.forgeCsrfToken = () => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
};
