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
  // 503: PostgreSQL or Redis is not answering (docs/operations.md). The response is not
  // swapped, so the form stays as it was, to be sent again; the reason shows at the top of the
  // page until a request succeeds.
  document.body.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    if (!xhr || xhr.status !== 503) return;
    let text = "";
    try {
      text = JSON.parse(xhr.responseText).detail || "";
    } catch (error) {
      text = new DOMParser().parseFromString(xhr.responseText, "text/html").body.textContent.trim();
    }
    let box = document.getElementById("outage");
    if (!box) {
      box = document.createElement("p");
      box.id = "outage";
      box.className = "error";
      box.setAttribute("role", "alert");
      (document.querySelector("main") || document.body).prepend(box);
    }
    box.textContent = text || "The service is temporarily unavailable; please try again in a minute.";
  });
  document.body.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.successful) document.getElementById("outage")?.remove();
  });
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
