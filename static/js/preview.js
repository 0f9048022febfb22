// Preview tracks in the box editor: the draft's keyframes propagated by the worker
// (POST/GET /api/v1/datasets/{id}/preview), drawn on every frame as the user scrubs or plays,
// with a timeline of lanes (one per track: presence, confidence, keyframes, the frames the
// review budget would pick). Talks to editor.js through window.forgeEditor only.
(() => {
  "use strict";
  const editor = window.forgeEditor;
  const $ = (id) => document.getElementById(id);
  if (!editor || editor.review || !editor.editable || !$("preview-panel")) return;
  const api = `/api/v1/datasets/${editor.data.dataset_id}/preview`;
  const COUNT = editor.data.frame_count;
  const WEAK = 0.5;  // confidence under this is a weak stretch on the timeline
  let preview = null;  // {key, tracks: Map(track_id -> {class, boxes, confidence}), hard, keyframes}
  let wanted = null, timer = null, playing = null;
  let updating = null;  // [[track_id, first, last]] a running re-propagation changes (marked on the lanes)

  const status = (text, state) => { const s = $("preview-status"); s.textContent = text; s.dataset.state = state; };

  async function request() {
    clearTimeout(timer);
    const answer = await fetch(api, { method: "POST", headers: { "X-CSRF-Token": window.forgeCsrfToken() } })
      .then((r) => r.json()).catch(() => null);
    if (!answer) { status("Preview: the server could not be reached.", "error"); return; }
    wanted = answer.key;
    if (answer.state === "empty") { preview = null; status(answer.message, "empty"); editor.redraw(); drawTimeline(); return; }
    poll();
  }

  async function poll() {
    const answer = await fetch(`${api}?start=0&stop=0`).then((r) => r.json()).catch(() => null);
    if (!answer || answer.key !== wanted) { timer = setTimeout(poll, 700); return; }
    if (answer.state === "failed") { status(`Preview failed: ${answer.error}`, "error"); return; }
    if (answer.state !== "ready") {
      const share = answer.total ? Math.round(100 * answer.done / answer.total) : 0;
      updating = answer.updating || null;
      const what = updating && preview
        ? updating.map(([id, a, b]) => `#${id} frames ${a}–${b}`).join(", ") : "the objects";
      status(`Preview: following ${what}… ${share}%`, "running");
      markComputing(answer.done || 0);
      timer = setTimeout(poll, 500);
      return;
    }
    await load(answer.key);
  }

  async function load(key) {
    const tracks = new Map();
    let head = null;
    for (let start = 0; start < COUNT; start += 2000) {
      const page = await fetch(`${api}?start=${start}&stop=${start + 2000}`).then((r) => r.json());
      if (page.key !== key || page.state !== "ready") { timer = setTimeout(poll, 500); return; }
      head = head || page;
      for (const t of page.tracks) {
        const known = tracks.get(t.track_id) || { class: t.class, boxes: [], confidence: [], present: t.present };
        known.boxes.push(...t.boxes); known.confidence.push(...t.confidence);
        tracks.set(t.track_id, known);
      }
    }
    const checks = head.attribute_checks || [];
    preview = { key, tracks, hard: new Set(head.hard_frames), checks: new Set(checks), keyframes: new Set(head.keyframes),
                engine: head.engine };
    updating = null;
    const review = head.hard_frames.length + checks.length;
    status(`Preview ready: ${tracks.size} track${tracks.size === 1 ? "" : "s"} on ${COUNT} frames (${head.engine}); `
      + `${review} frames would go to review`
      + (checks.length ? ` (${checks.length} of them to check attribute values).` : "."), "ready");
    editor.redraw();
    drawTimeline();
  }

  // ---- what editor.js asks -------------------------------------------------------------
  editor.previewBox = (trackId, frame) => {
    const t = preview && preview.tracks.get(trackId);
    if (!t || !t.boxes[frame]) return null;
    return { box: t.boxes[frame], class: t.class, confidence: t.confidence[frame] };
  };
  editor.previewTracks = () => (preview ? [...preview.tracks.keys()] : []);
  editor.onSaved(() => { clearTimeout(timer); status("Preview: keyframes changed, updating…", "running"); timer = setTimeout(request, 600); });
  editor.onFrame(() => drawTimeline());

  // ---- timeline -------------------------------------------------------------------------
  let computedUpTo = null;
  function markComputing(done) { computedUpTo = done; drawTimeline(); }

  function drawTimeline() {
    const canvas = $("timeline-canvas"), ctx = canvas.getContext("2d");
    const ids = preview ? [...preview.tracks.keys()].sort((a, b) => a - b) : [];
    const lane = 18, width = canvas.clientWidth || 600;
    canvas.width = width * devicePixelRatio;
    canvas.height = Math.max(1, ids.length) * lane * devicePixelRatio + 10 * devicePixelRatio;
    canvas.style.height = `${Math.max(1, ids.length) * lane + 10}px`;
    ctx.setTransform(devicePixelRatio, 0, 0, devicePixelRatio, 0, 0);
    ctx.clearRect(0, 0, width, canvas.height);
    const x = (f) => (f / Math.max(1, COUNT - 1)) * (width - 2) + 1;
    if (!preview) {
      ctx.fillStyle = "#e4e7ee";
      ctx.fillRect(0, 2, width, lane - 4);
      if (computedUpTo) { ctx.fillStyle = "#b8c4dd"; ctx.fillRect(0, 2, x(computedUpTo), lane - 4); }
    }
    ids.forEach((id, row) => {
      const t = preview.tracks.get(id), y = row * lane + 2;
      ctx.fillStyle = "#eef0f4";
      ctx.fillRect(0, y, width, lane - 4);
      for (let f = 0; f < COUNT; f++) {
        if (!t.boxes[f]) continue;
        ctx.fillStyle = t.confidence[f] < WEAK ? "#d9534f" : editor.colorOf(t.class);
        ctx.globalAlpha = t.confidence[f] < WEAK ? 0.9 : 0.35 + 0.65 * t.confidence[f];
        ctx.fillRect(x(f), y, Math.max(1, x(f + 1) - x(f)), lane - 4);
      }
      ctx.globalAlpha = 1;
      for (const [tid, a, b] of updating || []) {  // being re-propagated: hatched until it is back
        if (tid !== id) continue;
        ctx.fillStyle = "rgba(255, 255, 255, 0.55)";
        ctx.fillRect(x(a), y, x(b + 1) - x(a), lane - 4);
        ctx.strokeStyle = "#667085";
        ctx.beginPath();
        for (let hx = x(a); hx < x(b + 1); hx += 6) { ctx.moveTo(hx, y + lane - 4); ctx.lineTo(hx + 4, y); }
        ctx.stroke();
      }
      ctx.fillStyle = "#101828";
      ctx.font = "11px system-ui, sans-serif";
      ctx.fillText(`#${id} ${t.class}`, 4, y + lane - 7);
    });
    const bottom = Math.max(1, ids.length) * lane;
    if (preview) {
      ctx.fillStyle = "#2f6fed";
      for (const f of preview.keyframes) ctx.fillRect(x(f) - 1, 0, 2, bottom);
      ctx.fillStyle = "#c0392b";  // box checks: red ticks under the lanes
      for (const f of preview.hard) ctx.fillRect(x(f) - 1, bottom, 2, 8);
      ctx.fillStyle = "#7a3fc7";  // attribute checks: purple diamonds
      for (const f of preview.checks) {
        ctx.beginPath();
        ctx.moveTo(x(f), bottom); ctx.lineTo(x(f) + 4, bottom + 4); ctx.lineTo(x(f), bottom + 8); ctx.lineTo(x(f) - 4, bottom + 4);
        ctx.fill();
      }
    }
    ctx.fillStyle = "#101828";
    ctx.fillRect(x(editor.frame()) - 1, 0, 2, bottom + 8);
    canvas.dataset.tracks = String(ids.length);
    canvas.dataset.attributeChecks = preview ? String(preview.checks.size) : "";
    canvas.dataset.updating = updating && preview ? JSON.stringify(updating) : "";
  }

  $("timeline-canvas").addEventListener("click", (event) => {
    const rect = event.target.getBoundingClientRect();
    editor.goFrame(Math.round(((event.clientX - rect.left) / rect.width) * (COUNT - 1)));
  });
  window.addEventListener("resize", drawTimeline);

  // ---- playback -------------------------------------------------------------------------
  function stop() { clearInterval(playing); playing = null; $("play-button").textContent = "▶ Play"; }
  $("play-button").addEventListener("click", () => {
    if (playing) { stop(); return; }
    $("play-button").textContent = "❚❚ Pause";
    const fps = (editor.data.fps || 25) * Number($("play-speed").value || 1);
    playing = setInterval(() => {
      if (!editor.imageReady()) return;  // wait for the frame on screen before the next one
      if (editor.frame() >= COUNT - 1) { stop(); return; }
      editor.goFrame(editor.frame() + 1);
    }, Math.max(15, 1000 / fps));
  });

  request();
})();
