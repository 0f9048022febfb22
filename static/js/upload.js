// Upload with a progress bar: posts the file to the JSON API, then reloads the list.

// Decimal units with three significant digits, as the pages write sizes (src/units.py).
function humanBytes(n) {
  if (n < 1000) return `${Math.round(n)} B`;
  for (const unit of ["KB", "MB", "GB", "TB"]) {
    n /= 1000;
    const text = Number(n.toPrecision(3));
    if (text < 1000 || unit === "TB") return `${text} ${unit}`;
  }
  return `${n} PB`;
}
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("upload-file");
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const error = document.getElementById("upload-error");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = input.files[0];
    if (!file) return;
    error.hidden = true;
    const limit = Number(form.dataset.limit || 0);
    if (limit && file.size > limit) {
      error.textContent = `The file is ${humanBytes(file.size)}; your limit is ${humanBytes(limit)}.`;
      error.hidden = false;
      return;
    }
    const data = new FormData();
    data.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.dataset.api);
    xhr.setRequestHeader("X-CSRF-Token", window.forgeCsrfToken());
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const percent = Math.round((e.loaded / e.total) * 100);
      bar.hidden = false;
      bar.firstElementChild.style.width = percent + "%";
      status.textContent = percent < 100 ? `Uploading… ${percent}%` : "Checking the video…";
    });
    xhr.addEventListener("load", () => {
      if (xhr.status === 201) { window.location.reload(); return; }
      let message = `Upload failed (${xhr.status}).`;
      try { message = JSON.parse(xhr.responseText).detail; } catch (_) { /* keep the generic message */ }
      error.textContent = typeof message === "string" ? message : JSON.stringify(message);
      error.hidden = false;
      bar.hidden = true;
      status.textContent = "";
    });
    xhr.addEventListener("error", () => { error.textContent = "The connection was lost; try again."; error.hidden = false; });
    xhr.send(data);
  });
});
