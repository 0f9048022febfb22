// Frame scrubber: slider, frame number, step buttons and ←/→ keys over the frames API.
document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("scrubber");
  if (!root) return;
  const frames = Number(root.dataset.frames), fps = Number(root.dataset.fps) || 1;
  const img = document.getElementById("scrubber-frame");
  const slider = document.getElementById("scrubber-slider");
  const number = document.getElementById("scrubber-number");
  const time = document.getElementById("scrubber-time");
  let current = 0, timer = null;
  function show(n) {
    current = Math.max(0, Math.min(frames - 1, n | 0));
    slider.value = number.value = current;
    time.textContent = (current / fps).toFixed(2) + " s";
    clearTimeout(timer);  // load the image once the user pauses on a frame
    timer = setTimeout(() => {
      img.src = `/api/v1/videos/${root.dataset.video}/frames/${current}?width=960`;
      img.alt = `frame ${current}`;
    }, 60);
  }
  slider.addEventListener("input", () => show(Number(slider.value)));
  number.addEventListener("change", () => show(Number(number.value)));
  document.getElementById("scrubber-prev").addEventListener("click", () => show(current - 1));
  document.getElementById("scrubber-next").addEventListener("click", () => show(current + 1));
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" && e.target.type !== "range") return;
    if (e.key === "ArrowLeft") { show(current - 1); e.preventDefault(); }
    if (e.key === "ArrowRight") { show(current + 1); e.preventDefault(); }
  });
});
