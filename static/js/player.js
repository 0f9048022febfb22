// A small frame player: plays a list of frames (images from `src`, boxes drawn over them) on a
// canvas, with play / pause, speed and frame step. Used by the dataset page (the delivered
// boxes) and the review page (the frames around a hard frame, so a reviewer sees the motion).
// Data: <script type="application/json" id="player-data">{"src": "/…/frames/{n}", "width", "height",
// "fps", "frames": [n, …], "boxes": {n: [[x1, y1, x2, y2, "class"], …]}, "colors": {class: "#hex"},
// "start": n}</script>
(() => {
  "use strict";
  const holder = document.getElementById("player-data");
  if (!holder) return;
  const data = JSON.parse(holder.textContent);
  const $ = (id) => document.getElementById(id);
  const canvas = $("player-canvas"), ctx = canvas.getContext("2d");
  const frames = data.frames;
  let index = Math.max(0, frames.indexOf(data.start ?? frames[0])), timer = null, image = null;

  function draw() {
    const width = canvas.clientWidth || 640, scale = width / data.width;
    canvas.width = width; canvas.height = Math.round(data.height * scale);
    ctx.fillStyle = "#1d2433";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (image && image.complete && image.naturalWidth) ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    const n = frames[index];
    ctx.lineWidth = 2;
    ctx.font = "12px system-ui, sans-serif";
    for (const [x1, y1, x2, y2, name] of (data.boxes || {})[n] || []) {
      ctx.strokeStyle = ctx.fillStyle = (data.colors || {})[name] || "#ffd400";
      ctx.strokeRect(x1 * scale, y1 * scale, (x2 - x1) * scale, (y2 - y1) * scale);
      ctx.fillText(name, x1 * scale + 2, Math.max(12, y1 * scale - 3));
    }
    $("player-frame").textContent = `frame ${n} (${index + 1} of ${frames.length})`;
    canvas.dataset.frame = String(n);
  }

  function show(i) {
    index = (i + frames.length) % frames.length;
    const img = new Image();
    image = img;
    canvas.dataset.ready = "0";
    img.onload = img.onerror = () => { if (image === img) { canvas.dataset.ready = "1"; draw(); } };
    img.src = data.src.replace("{n}", String(frames[index]));
    draw();
  }

  function stop() { clearInterval(timer); timer = null; $("player-play").textContent = "▶ Play"; }
  $("player-play").addEventListener("click", () => {
    if (timer) { stop(); return; }
    $("player-play").textContent = "❚❚ Pause";
    const fps = (data.fps || 25) * Number($("player-speed").value || 1);
    timer = setInterval(() => { if (canvas.dataset.ready === "1") show(index + 1); }, Math.max(30, 1000 / fps));
  });
  $("player-prev").addEventListener("click", () => { stop(); show(index - 1); });
  $("player-next").addEventListener("click", () => { stop(); show(index + 1); });
  window.addEventListener("resize", draw);
  show(index);
})();
