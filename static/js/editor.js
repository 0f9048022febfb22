// The box editor: draw, select, move, resize and delete boxes on one frame of the video,
// link boxes to tracks of other keyframes, mark objects gone, step between frames.
// Boxes are kept in full-resolution video pixels; every change is saved with
// PUT /api/v1/datasets/{id}/keyframes/{frame} (autosave, or the Save button).
(() => {
  "use strict";
  const data = JSON.parse(document.getElementById("editor-data").textContent);
  const W = data.width, H = data.height, COUNT = data.frame_count;
  const MIN_BOX = 2, HANDLE = 7;
  const api = `/api/v1/datasets/${data.dataset_id}`;
  // Review mode (the built-in review page): only the job's hard frames, and every change is
  // saved as that frame's correction instead of a keyframe.
  const review = data.review || null;  // {job_id, frames: [video frame, ...]}
  const $ = (id) => document.getElementById(id);
  const canvas = $("editor-canvas"), ctx = canvas.getContext("2d");
  const clone = (value) => JSON.parse(JSON.stringify(value));

  const keyframes = new Map(data.keyframes.map((k) => [k.frame, k.objects]));
  let frame = data.frame;
  let objects = clone(keyframes.get(frame) || []);
  let selected = -1;
  let activeClass = data.classes.length ? data.classes[0].name : null;
  let undoStack = [], redoStack = [];
  let view = { scale: 1, x: 0, y: 0 };  // canvas px = video px * scale + offset
  let image = null;
  let drag = null, spaceDown = false, fittedWidth = 0;
  let dirty = false, saveTimer = null, saving = Promise.resolve(), pending = 0;

  // What other scripts of the editor page (preview.js) may use; they set previewBox/previewTracks.
  const hooks = { saved: [], frame: [], previewBox: null, previewTracks: () => [] };
  window.forgeEditor = {
    data, review, editable: data.editable,
    frame: () => frame, goFrame: (n) => goFrame(n), redraw: () => render(),
    colorOf: (name) => colorOf(name), imageReady: () => canvas.dataset.ready === "1",
    onSaved: (cb) => hooks.saved.push(cb), onFrame: (cb) => hooks.frame.push(cb),
    set previewBox(fn) { hooks.previewBox = fn; }, set previewTracks(fn) { hooks.previewTracks = fn; },
  };
  const colorOf = (name) => (data.classes.find((c) => c.name === name) || { color: "#ffffff" }).color;
  const isBox = (o) => o && !o.gone;
  const message = (text) => { $("editor-message").textContent = text || ""; };

  // ---- geometry -----------------------------------------------------------------------
  function fit() {
    const wrap = $("canvas-wrap");
    let width = wrap.clientWidth;
    let height = Math.round(width * H / W);
    const maxHeight = Math.max(240, window.innerHeight * 0.7);
    if (height > maxHeight) { height = Math.round(maxHeight); width = Math.round(height * W / H); }
    canvas.width = width; canvas.height = height;
    view = { scale: width / W, x: 0, y: 0 };
    canvas.dataset.zoom = "1";
    fittedWidth = wrap.clientWidth;
    render();
  }

  function toVideo(event) {
    const rect = canvas.getBoundingClientRect();
    const cx = (event.clientX - rect.left) * canvas.width / rect.width;
    const cy = (event.clientY - rect.top) * canvas.height / rect.height;
    return { x: (cx - view.x) / view.scale, y: (cy - view.y) / view.scale, cx, cy };
  }

  const clampX = (x) => Math.min(W, Math.max(0, x));
  const clampY = (y) => Math.min(H, Math.max(0, y));
  const normal = ([a, b, c, d]) => [Math.min(a, c), Math.min(b, d), Math.max(a, c), Math.max(b, d)];
  const bigEnough = (b) => b[2] - b[0] >= MIN_BOX && b[3] - b[1] >= MIN_BOX;

  function handles(box) {
    const [x1, y1, x2, y2] = box, mx = (x1 + x2) / 2, my = (y1 + y2) / 2;
    return { nw: [x1, y1], n: [mx, y1], ne: [x2, y1], e: [x2, my], se: [x2, y2], s: [mx, y2], sw: [x1, y2], w: [x1, my] };
  }

  function handleAt(p, reach = HANDLE) {  // reach: canvas px around a handle that still grabs it
    if (!isBox(objects[selected])) return null;
    const tolerance = reach / view.scale;
    for (const [name, [hx, hy]] of Object.entries(handles(objects[selected].box))) {
      if (Math.abs(p.x - hx) <= tolerance && Math.abs(p.y - hy) <= tolerance) return name;
    }
    return null;
  }

  function boxAt(p) {
    for (let i = objects.length - 1; i >= 0; i--) {
      const o = objects[i];
      if (isBox(o) && p.x >= o.box[0] && p.x <= o.box[2] && p.y >= o.box[1] && p.y <= o.box[3]) return i;
    }
    return -1;
  }

  // ---- tracks -------------------------------------------------------------------------
  function otherTracks() {
    // track id -> {class, frames} over the keyframes other than this one
    const tracks = new Map();
    for (const [f, objs] of [...keyframes.entries()].sort((a, b) => a[0] - b[0])) {
      if (f === frame) continue;
      for (const o of objs) {
        if (!isBox(o)) continue;
        const t = tracks.get(o.track_id) || { class: o.class, frames: [] };
        t.frames.push(f);
        if (f < frame || !t.class) t.class = o.class;
        tracks.set(o.track_id, t);
      }
    }
    return tracks;
  }

  // Ghosts: where each track of the other keyframes is, on a frame where it has no box yet (its
  // box on the nearest keyframe, unless a "gone" mark lies between). A box drawn over a ghost
  // of its class continues that track instead of starting a new object.
  function ghosts() {
    const here = new Set(objects.map((o) => o.track_id));
    const best = new Map();  // track id -> {box, class, distance}
    for (const [f, objs] of keyframes) {
      if (f === frame) continue;
      for (const o of objs) {
        if (here.has(o.track_id)) continue;
        const d = Math.abs(f - frame), known = best.get(o.track_id);
        if (!known || d < known.distance) best.set(o.track_id, { box: o.box, class: o.class, gone: !!o.gone, distance: d, from: f });
      }
    }
    const found = [...best.entries()].filter(([, g]) => !g.gone).map(([id, g]) => ({ track_id: id, ...g }));
    if (!hooks.previewBox) return found;
    // with a preview: where the engine has the object on this frame (no box there: not in view)
    const previewed = new Set(hooks.previewTracks());
    return found.flatMap((g) => {
      if (!previewed.has(g.track_id)) return [g];
      const p = hooks.previewBox(g.track_id, frame);
      return p ? [{ ...g, box: p.box, confidence: p.confidence, preview: true }] : [];
    });
  }

  function ghostAt(p) {  // the ghost (preview) box under the pointer, smallest first
    const under = ghosts().filter((g) => p.x >= g.box[0] && p.x <= g.box[2] && p.y >= g.box[1] && p.y <= g.box[3]);
    under.sort((a, b) => (a.box[2] - a.box[0]) * (a.box[3] - a.box[1]) - (b.box[2] - b.box[0]) * (b.box[3] - b.box[1]));
    return under[0] || null;
  }

  function iou(a, b) {
    const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0])), h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
    const inter = w * h, union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    return union > 0 ? inter / union : 0;
  }

  // The ghost a new box continues: of the same class, overlapping it or with its centre within
  // one ghost size (an object moves between keyframes); the nearest such ghost wins.
  function trackForNewBox(box, className) {
    const centre = (b) => [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2];
    const [cx, cy] = centre(box);
    let pick = null, best = Infinity;
    for (const g of ghosts()) {
      if (g.class !== className) continue;
      const [gx, gy] = centre(g.box), distance = Math.hypot(cx - gx, cy - gy);
      const reach = Math.max(g.box[2] - g.box[0], g.box[3] - g.box[1]);
      if ((iou(box, g.box) >= 0.1 || distance <= reach) && distance < best) { pick = g.track_id; best = distance; }
    }
    return pick ?? nextTrackId();
  }

  function drawGhosts(px) {
    ctx.setLineDash([6 * px, 4 * px]);
    ctx.lineWidth = 1.5 * px;
    ctx.font = `${11 * px}px system-ui, sans-serif`;
    for (const g of ghosts()) {
      const [x1, y1, x2, y2] = g.box;
      ctx.strokeStyle = colorOf(g.class);
      ctx.globalAlpha = g.preview ? 0.9 : 0.6;
      ctx.setLineDash(g.preview ? [] : [6 * px, 4 * px]);
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      ctx.fillStyle = colorOf(g.class);
      const label = g.preview ? `#${g.track_id} ${g.class} · ${g.confidence.toFixed(2)} (preview: drag to fix)`
        : `#${g.track_id} ${g.class} · as on frame ${g.from}`;
      ctx.fillText(label, x1 + 2 * px, y2 - 4 * px);
      ctx.globalAlpha = 1;
    }
    ctx.setLineDash([]);
  }

  function nextTrackId() {
    let max = 0;
    for (const [f, objs] of keyframes) if (f !== frame) for (const o of objs) max = Math.max(max, o.track_id);
    for (const o of objects) max = Math.max(max, o.track_id);
    return max + 1;
  }

  // ---- drawing ------------------------------------------------------------------------
  function render() {
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#1d2433";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(view.scale, 0, 0, view.scale, view.x, view.y);
    if (image && image.complete && image.naturalWidth) ctx.drawImage(image, 0, 0, W, H);
    else { ctx.fillStyle = "#444"; ctx.fillRect(0, 0, W, H); }
    const px = 1 / view.scale;
    if (data.editable && !review) drawGhosts(px);
    objects.forEach((o, i) => {
      if (!isBox(o)) return;
      const [x1, y1, x2, y2] = o.box;
      ctx.strokeStyle = colorOf(o.class);
      ctx.lineWidth = (i === selected ? 3 : 2) * px;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      ctx.font = `${12 * px}px system-ui, sans-serif`;
      ctx.fillStyle = colorOf(o.class);
      ctx.fillText(`#${o.track_id} ${o.class || "?"}`, x1 + 2 * px, Math.max(y1 - 3 * px, 12 * px));
      if (i === selected) {
        ctx.fillStyle = "#fff";
        for (const [hx, hy] of Object.values(handles(o.box))) {
          ctx.fillRect(hx - 3 * px, hy - 3 * px, 6 * px, 6 * px);
          ctx.strokeRect(hx - 3 * px, hy - 3 * px, 6 * px, 6 * px);
        }
      }
    });
    if (drag && drag.mode === "draw") {
      const [x1, y1, x2, y2] = normal(drag.box);
      ctx.setLineDash([4 * px, 3 * px]);
      ctx.strokeStyle = activeClass ? colorOf(activeClass) : "#fff";
      ctx.lineWidth = 2 * px;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      ctx.setLineDash([]);
    }
  }

  // ---- changes, undo, save ------------------------------------------------------------
  function changed(before) {
    undoStack.push(before);
    redoStack = [];
    scheduleSave();
    refresh();
  }

  function change(mutate) {
    if (!data.editable) return;
    const before = clone(objects);
    mutate();
    changed(before);
  }

  function undo() {
    if (!undoStack.length) return;
    redoStack.push(clone(objects));
    objects = undoStack.pop();
    selected = -1;
    scheduleSave(); refresh();
  }

  function redo() {
    if (!redoStack.length) return;
    undoStack.push(clone(objects));
    objects = redoStack.pop();
    selected = -1;
    scheduleSave(); refresh();
  }

  function setStatus(state, text) {
    const el = $("save-status");
    el.dataset.state = state;
    el.textContent = text;
  }

  function scheduleSave() {
    dirty = true;
    setStatus("unsaved", "Unsaved changes…");
    clearTimeout(saveTimer);
    saveTimer = setTimeout(flush, 400);
  }

  function flush() {
    clearTimeout(saveTimer);
    if (!dirty) return saving;
    dirty = false;
    const target = frame, payload = clone(objects);
    pending++;
    setStatus("saving", "Saving…");
    saving = saving.then(() => put(target, payload)).finally(() => { pending--; });
    return saving;
  }

  async function put(target, payload) {
    const objs = payload.map((o) => (o.gone ? { track_id: o.track_id, gone: true }
      : { track_id: o.track_id, class: o.class, box: o.box, ...attributesFor(o) }));
    const url = review ? `/api/v1/review/jobs/${review.job_id}/frames/${target}` : `${api}/keyframes/${target}`;
    const body = review ? { decision: "fixed", objects: objs.filter((o) => !o.gone) } : { objects: objs };
    try {
      const response = await fetch(url, {
        method: "PUT",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": window.forgeCsrfToken() },
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        const detail = typeof answer.detail === "string" ? answer.detail : `error ${response.status}`;
        setStatus("error", `Not saved: ${detail}`);
        return;
      }
      if (review) {
        keyframes.set(target, payload);
        markDecision(target, "fixed");
      } else {
        if (answer.objects.length) keyframes.set(target, answer.objects); else keyframes.delete(target);
        // a track has one class: the server set it on the track's other keyframes too
        const classes = new Map(answer.objects.filter(isBox).map((o) => [o.track_id, o.class]));
        const reclass = (objs) => { for (const o of objs) if (isBox(o) && classes.has(o.track_id)) o.class = classes.get(o.track_id); };
        for (const [f, objs] of keyframes) if (f !== target) reclass(objs);
        if (frame !== target) { reclass(objects); render(); refreshObjects(); }
      }
      if (!dirty && pending <= 1) setStatus("saved", "Saved");
      refreshMarks(); refreshTracks();
      if (!review) hooks.saved.forEach((cb) => cb(target));
    } catch (error) {
      setStatus("error", "Not saved: the server could not be reached.");
    }
  }

  // ---- frames -------------------------------------------------------------------------
  function loadImage() {
    canvas.dataset.ready = "0";
    const img = new Image();
    image = img;
    const done = (ok) => {
      if (image !== img) return;
      if (!ok) message("This frame could not be loaded.");
      canvas.dataset.image = ok ? "loaded" : "failed";
      canvas.dataset.ready = "1";
      render();
    };
    img.onload = () => done(true);
    img.onerror = () => done(false);
    img.src = review ? `/api/v1/review/jobs/${review.job_id}/frames/${frame}/image`
      : `/api/v1/videos/${data.video_id}/frames/${frame}`;
  }

  function markDecision(target, decision) {  // review page: the frame's badge follows its saved decision
    const badge = document.querySelector(`#frame-list a[data-frame="${target}"]`);
    if (!badge) return;
    badge.dataset.decision = decision;
    badge.textContent = `#${target} · ${decision}`;
    const left = document.querySelectorAll('#frame-list a[data-decision="pending"]').length;
    const counter = $("pending-count");
    if (counter) counter.textContent = String(left);
  }

  function reviewTarget(n) {  // in review mode, step through the job's frames only
    if (review.frames.includes(n)) return n;
    const later = review.frames.find((f) => f > frame), earlier = [...review.frames].reverse().find((f) => f < frame);
    return n > frame ? (later ?? frame) : (earlier ?? frame);
  }

  if (review) {  // the panel's forms (accept, reject, complete) wait until the last edit is saved
    document.addEventListener("submit", async (event) => {
      if (!dirty && !pending) return;
      event.preventDefault();
      await flush();
      await saving;
      event.target.submit();
    });
  }

  async function goFrame(n) {
    n = Math.min(COUNT - 1, Math.max(0, Math.round(n)));
    if (review) n = reviewTarget(n);
    if (Number.isNaN(n) || n === frame) return;
    await flush();
    if (review) {  // the review panel's buttons act on one frame: load the page of the next one
      window.location.assign(`?frame=${n}`);
      return;
    }
    frame = n;
    objects = clone(keyframes.get(frame) || []);
    selected = -1; undoStack = []; redoStack = [];
    message("");
    const url = new URL(window.location.href);
    url.searchParams.set("frame", String(frame));
    window.history.replaceState(null, "", url);
    $("frame-slider").value = frame;
    $("frame-number").value = frame;
    loadImage();
    refresh();
    hooks.frame.forEach((cb) => cb(frame));
  }

  // ---- side panel ---------------------------------------------------------------------
  function el(tag, props = {}, ...children) {
    const node = Object.assign(document.createElement(tag), props);
    node.append(...children);
    return node;
  }

  function swatch(color) {
    const s = el("span", { className: "swatch" });
    s.style.background = color;
    return s;
  }

  function refreshClasses() {
    const list = $("class-list");
    list.replaceChildren(...data.classes.map((c, i) => {
      const button = el("button", { type: "button", className: "class-button" + (c.name === activeClass ? " active" : "") },
        swatch(c.color), ` ${i < 9 ? i + 1 + " · " : ""}${c.name}`);
      button.dataset.name = c.name;
      button.addEventListener("click", () => pickClass(c.name));
      return button;
    }));
  }

  function refreshSelected() {
    const o = objects[selected];
    $("selected-panel").hidden = !isBox(o);
    $("nothing-selected").hidden = isBox(o);
    if (!isBox(o)) return;
    $("object-class").replaceChildren(...data.classes.map((c) => el("option", { value: c.name, textContent: c.name, selected: c.name === o.class })));
    const used = new Set(objects.filter((x, i) => i !== selected).map((x) => x.track_id));
    const options = [el("option", { value: String(o.track_id), textContent: `#${o.track_id} (this box)`, selected: true })];
    for (const [id, t] of otherTracks()) {
      if (id === o.track_id || used.has(id)) continue;
      options.push(el("option", { value: String(id), textContent: `same as #${id} ${t.class} (frame ${t.frames.join(", ")})` }));
    }
    options.push(el("option", { value: "new", textContent: "a new object" }));
    $("object-track").replaceChildren(...options);
    if ($("merge-into")) {  // merge: the tracks of other keyframes that are never on this one
      const merge = [...otherTracks()].filter(([id]) => id !== o.track_id && !used.has(id));
      $("merge-into").replaceChildren(...merge.map(([id, t]) => el("option", { value: String(id), textContent: `into #${id} ${t.class}` })));
      $("merge-track").disabled = !merge.length;
    }
  }

  // Split and merge act on every keyframe of a track: the server does it, the editor reloads them.
  async function trackAction(path, body) {
    await flush();
    const response = await fetch(`${api}/tracks/${path}`, {
      method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": window.forgeCsrfToken() },
      body: JSON.stringify(body),
    }).catch(() => null);
    const answer = response ? await response.json().catch(() => ({})) : {};
    if (!response || !response.ok) { message(answer.detail || "The server could not be reached."); return; }
    keyframes.clear();
    for (const k of answer.keyframes) keyframes.set(k.frame, k.objects);
    objects = clone(keyframes.get(frame) || []);
    selected = -1; undoStack = []; redoStack = [];
    message("");
    refresh(); refreshMarks(); refreshTracks();
    hooks.saved.forEach((cb) => cb(frame));
  }
  if ($("split-track")) {
    $("split-track").addEventListener("click", () => isBox(objects[selected]) && trackAction(`${objects[selected].track_id}/split`, { frame }));
    $("merge-track").addEventListener("click", () => isBox(objects[selected])
      && trackAction(`${objects[selected].track_id}/merge`, { into: Number($("merge-into").value) }));
  }

  function refreshObjects() {
    $("object-list").replaceChildren(...objects.map((o, i) => {
      const remove = el("button", { type: "button", className: "link-button", textContent: "×", title: "Remove" });
      remove.addEventListener("click", (event) => { event.stopPropagation(); removeObject(i); });
      const label = o.gone ? `#${o.track_id} gone from here on` : `#${o.track_id} ${o.class}`;
      const item = el("li", { className: "object-item" + (i === selected ? " selected" : "") },
        swatch(o.gone ? "#999" : colorOf(o.class)), ` ${label} `, remove);
      item.dataset.trackId = o.track_id;
      if (isBox(o)) item.addEventListener("click", () => { selected = i; refresh(); });
      return item;
    }));
  }

  function refreshTracks() {
    const here = new Set(objects.map((o) => o.track_id));
    const items = [];
    for (const [id, t] of otherTracks()) {
      if (here.has(id)) continue;
      const item = el("li", { className: "object-item" }, swatch(colorOf(t.class)), ` #${id} ${t.class} (frame ${t.frames.join(", ")}) `);
      item.dataset.trackId = id;
      if (t.frames.some((f) => f < frame)) {
        const gone = el("button", { type: "button", className: "link-button", textContent: "gone from here" });
        gone.addEventListener("click", () => change(() => objects.push({ track_id: id, gone: true })));
        item.append(gone);
      }
      items.push(item);
    }
    $("track-list").replaceChildren(...items);
  }

  function refreshMarks() {
    const marks = $("keyframe-marks");
    marks.replaceChildren(...[...keyframes.keys()].sort((a, b) => a - b).map((f) => {
      const mark = el("span", { className: "kf-mark" + (f === frame ? " current" : ""), title: `keyframe ${f}` });
      mark.style.left = `${COUNT > 1 ? (f / (COUNT - 1)) * 100 : 0}%`;
      mark.dataset.frame = f;
      mark.addEventListener("click", () => goFrame(f));
      return mark;
    }));
    $("keyframe-flag").hidden = !keyframes.has(frame);
  }

  function refresh() {
    refreshClasses(); refreshSelected(); refreshAttributes(); refreshObjects(); refreshTracks(); refreshMarks(); render();
  }

  // ---- actions ------------------------------------------------------------------------
  function pickClass(name) {
    activeClass = name;
    if (isBox(objects[selected]) && objects[selected].class !== name) {
      change(() => { objects[selected].class = name; });
    } else refresh();
  }

  function removeObject(i) {
    change(() => { objects.splice(i, 1); });
    selected = -1;
    refresh();
  }

  function linkTrack(value) {
    const o = objects[selected];
    if (!isBox(o)) return;
    change(() => {
      if (value === "new") { o.track_id = nextTrackId(); return; }
      const id = Number(value), track = otherTracks().get(id);
      o.track_id = id;
      if (track && track.class) o.class = track.class;
    });
  }

  // ---- pointer: mouse, pen and touch (Pointer Events) ---------------------------------
  // One finger, the pen or the mouse draws, moves and resizes boxes; two fingers pinch to zoom
  // (and pan with their midpoint). The canvas has `touch-action: none` (editor.css), so the
  // browser leaves these gestures to the page instead of scrolling or zooming it.
  const TOUCH_HANDLE = 16;  // canvas px: a fingertip needs a larger target than the mouse
  const fingers = new Map();  // pointerId -> {cx, cy}: the touch points down on the canvas
  let pinch = null;

  function zoomAt(p, scale) {  // keep the video point (p.x, p.y) under the canvas point (p.cx, p.cy)
    const fitScale = canvas.width / W;
    scale = Math.min(fitScale * 30, Math.max(fitScale * 0.5, scale));
    view = { scale, x: p.cx - p.x * scale, y: p.cy - p.y * scale };
    canvas.dataset.zoom = (scale / fitScale).toFixed(3);
    render();
  }

  function midpoint() {
    const [a, b] = [...fingers.values()];
    return { cx: (a.cx + b.cx) / 2, cy: (a.cy + b.cy) / 2, spread: Math.hypot(a.cx - b.cx, a.cy - b.cy) || 1 };
  }

  function startPinch() {
    if (drag && drag.before) objects = drag.before;  // the second finger cancels what the first began
    drag = null;
    const m = midpoint();
    pinch = { spread: m.spread, scale: view.scale, x: (m.cx - view.x) / view.scale, y: (m.cy - view.y) / view.scale };
    refresh();
  }

  canvas.addEventListener("mousedown", (event) => { if (event.button === 1) event.preventDefault(); });  // no autoscroll

  canvas.addEventListener("pointerdown", (event) => {
    canvas.focus({ preventScroll: true });  // a scroll now would move the canvas under the pointer: the press would land elsewhere
    const p = toVideo(event), touch = event.pointerType === "touch";
    if (touch) {
      fingers.set(event.pointerId, { cx: p.cx, cy: p.cy });
      if (fingers.size === 2) startPinch();
      if (fingers.size >= 2) return;
    }
    if (drag) return;  // another button or pen while dragging
    canvas.setPointerCapture(event.pointerId);  // the drag goes on outside the canvas
    if (event.button === 1 || (event.button === 0 && spaceDown)) {
      event.preventDefault();
      drag = { mode: "pan", pointerId: event.pointerId, cx: p.cx, cy: p.cy, x: view.x, y: view.y };
      return;
    }
    if (event.button !== 0 || !data.editable) return;
    const handle = handleAt(p, touch ? TOUCH_HANDLE : HANDLE);
    if (handle) {
      drag = { mode: "resize", pointerId: event.pointerId, handle, before: clone(objects), start: p };
      return;
    }
    const ghost = !review && boxAt(p) < 0 && !handle ? ghostAt(p) : null;
    if (ghost && ghost.preview) {  // fix in place: the previewed box becomes this frame's box of its track
      const before = clone(objects);
      objects.push({ track_id: ghost.track_id, class: ghost.class, box: ghost.box.slice() });
      selected = objects.length - 1;
      drag = { mode: "move", pointerId: event.pointerId, before, start: p, box: ghost.box.slice(), adopted: true };
      refresh();
      return;
    }
    const hit = boxAt(p);
    if (hit >= 0) {
      selected = hit;
      drag = { mode: "move", pointerId: event.pointerId, before: clone(objects), start: p, box: objects[hit].box.slice() };
      refresh();
      return;
    }
    const x = clampX(p.x), y = clampY(p.y);
    drag = { mode: "draw", pointerId: event.pointerId, box: [x, y, x, y] };
  });

  canvas.addEventListener("pointermove", (event) => {
    const p = toVideo(event);
    if (fingers.has(event.pointerId)) fingers.set(event.pointerId, { cx: p.cx, cy: p.cy });
    if (pinch) {
      if (fingers.size < 2) return;
      const m = midpoint();
      zoomAt({ x: pinch.x, y: pinch.y, cx: m.cx, cy: m.cy }, pinch.scale * m.spread / pinch.spread);
      return;
    }
    if (!drag || drag.pointerId !== event.pointerId) return;
    if (drag.mode === "pan") {
      view.x = drag.x + (p.cx - drag.cx);
      view.y = drag.y + (p.cy - drag.cy);
    } else if (drag.mode === "draw") {
      drag.box[2] = clampX(p.x); drag.box[3] = clampY(p.y);
    } else if (drag.mode === "move") {
      const [x1, y1, x2, y2] = drag.box;
      const dx = Math.min(W - x2, Math.max(-x1, p.x - drag.start.x));
      const dy = Math.min(H - y2, Math.max(-y1, p.y - drag.start.y));
      objects[selected].box = [x1 + dx, y1 + dy, x2 + dx, y2 + dy];
      drag.moved = true;
    } else if (drag.mode === "resize") {
      const box = objects[selected].box;
      if (drag.handle.includes("w")) box[0] = clampX(p.x);
      if (drag.handle.includes("e")) box[2] = clampX(p.x);
      if (drag.handle.includes("n")) box[1] = clampY(p.y);
      if (drag.handle.includes("s")) box[3] = clampY(p.y);
      drag.moved = true;
    }
    render();
  });

  function pointerEnd(event) {
    fingers.delete(event.pointerId);
    if (pinch) {  // lifting the fingers after a pinch draws nothing
      if (fingers.size === 0) pinch = null;
      return;
    }
    if (!drag || drag.pointerId !== event.pointerId) return;
    const d = drag;
    drag = null;
    if (event.type === "pointercancel") {  // the browser took the gesture over: undo what it began
      if (d.before) objects = d.before;
      refresh();
      return;
    }
    if (d.mode === "draw") {
      const box = normal(d.box);
      if (box[2] - box[0] < 0.5 && box[3] - box[1] < 0.5) { selected = -1; refresh(); return; }
      if (!bigEnough(box)) { message("Boxes must be at least 2×2 pixels."); render(); return; }
      if (!activeClass) { message("Add a class on the dataset page first."); render(); return; }
      message("");
      const track = review ? nextTrackId() : trackForNewBox(box, activeClass);
      change(() => { objects.push({ track_id: track, class: activeClass, box }); });
      selected = objects.length - 1;
      refresh();
    } else if (d.adopted && !d.moved) {  // a click on a preview box: nothing changes
      objects = d.before;
      selected = -1;
      refresh();
    } else if ((d.mode === "move" || d.mode === "resize") && d.moved) {
      const box = normal(objects[selected].box);
      if (!bigEnough(box)) {
        objects = d.before;
        message("Boxes must be at least 2×2 pixels.");
        refresh();
        return;
      }
      objects[selected].box = box;
      changed(d.before);
    }
    render();
  }
  canvas.addEventListener("pointerup", pointerEnd);
  canvas.addEventListener("pointercancel", pointerEnd);

  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    zoomAt(toVideo(event), view.scale * Math.pow(1.0015, -event.deltaY));
  }, { passive: false });

  canvas.addEventListener("auxclick", (event) => event.preventDefault());

  // ---- attributes (docs/attributes.md) -------------------------------------------------
  // The selected box's attribute values: set on this frame (they hold from here on, until a
  // later keyframe of the track changes them) or, marked "from frame N", the value the track
  // has here from an earlier keyframe. Shift+1..9 toggles the n-th value of the class's first
  // one-of / several-of attribute (the quick action picker).
  const attributeSpecs = (cls) => (data.attributes || []).filter((a) => a.class === cls);

  function attributesFor(o) {  // the values a saved box sends: only its class's attributes
    const names = new Set(attributeSpecs(o.class).map((a) => a.name));
    const kept = Object.entries(o.attributes || {}).filter(([name]) => names.has(name));
    return kept.length ? { attributes: Object.fromEntries(kept) } : {};
  }

  function attributeValue(o, spec) {  // {value, from}: from = null (set here), a frame, or "default"
    if (o.attributes && spec.name in o.attributes) return { value: o.attributes[spec.name], from: null };
    let best = null;
    for (const [f, objs] of keyframes) {
      if (f === frame || (spec.mutable && f > frame)) continue;
      const other = objs.find((x) => isBox(x) && x.track_id === o.track_id && x.attributes && spec.name in x.attributes);
      if (other && (!best || (spec.mutable ? f > best.from : f < best.from))) best = { value: other.attributes[spec.name], from: f };
    }
    return best || { value: spec.default, from: "default" };
  }

  function setAttribute(name, value) {
    if (!isBox(objects[selected])) return;
    change(() => { const o = objects[selected]; o.attributes = { ...(o.attributes || {}), [name]: value }; });
  }

  function attributeSegments(o, spec) {  // "frame 0: walk · frame 30: stand" over the track's keyframes
    const parts = [];
    const frames = [...keyframes.keys(), frame].filter((f, i, all) => all.indexOf(f) === i).sort((a, b) => a - b);
    for (const f of frames) {
      const objs = f === frame ? objects : keyframes.get(f);
      const box = (objs || []).find((x) => isBox(x) && x.track_id === o.track_id);
      if (box && box.attributes && spec.name in box.attributes) {
        const v = box.attributes[spec.name];
        parts.push(`frame ${f}: ${Array.isArray(v) ? (v.join(", ") || "none") : String(v)}`);
      }
    }
    return parts.join(" · ");
  }

  function attributeControl(spec, current) {
    const disabled = !data.editable;
    if (spec.kind === "multi") {
      return el("span", { className: "attribute-choices" }, ...spec.values.map((v, i) => {
        const box = el("input", { type: "checkbox", checked: (current || []).includes(v), disabled });
        box.dataset.attribute = spec.name; box.dataset.value = v;
        box.addEventListener("change", () => {
          const chosen = new Set(attributeValue(objects[selected], spec).value || []);
          if (box.checked) chosen.add(v); else chosen.delete(v);
          setAttribute(spec.name, spec.values.filter((x) => chosen.has(x)));
        });
        return el("label", { title: i < 9 ? `Shift+${i + 1}` : "" }, box, ` ${v}`);
      }));
    }
    let input;
    if (spec.kind === "select") {
      input = el("select", { disabled }, ...spec.values.map((v) => el("option", { value: v, textContent: v, selected: v === current })));
      input.addEventListener("change", () => setAttribute(spec.name, input.value));
    } else if (spec.kind === "checkbox") {
      input = el("input", { type: "checkbox", checked: current === true, disabled });
      input.addEventListener("change", () => setAttribute(spec.name, input.checked));
    } else {
      input = el("input", { type: spec.kind === "number" ? "number" : "text", value: current ?? "", disabled });
      if (spec.kind === "number" && spec.values.length >= 2) { input.min = spec.values[0]; input.max = spec.values[1]; }
      input.addEventListener("change", () => setAttribute(spec.name, spec.kind === "number" ? Number(input.value) : input.value));
    }
    input.dataset.attribute = spec.name;
    return input;
  }

  function refreshAttributes() {
    const panel = $("attribute-panel");
    if (!panel) return;
    const o = objects[selected];
    const specs = isBox(o) ? attributeSpecs(o.class) : [];
    panel.hidden = !specs.length;
    panel.replaceChildren(...specs.map((spec) => {
      const { value, from } = attributeValue(o, spec);
      const note = from === null ? "set on this frame" : from === "default" ? "default" : `from frame ${from}`;
      const row = el("div", { className: "attribute-row" },
        el("span", { className: "attribute-name", textContent: `${spec.name} ` }),
        el("small", { className: "muted attribute-from", textContent: spec.mutable ? note : `${note}, whole track` }),
        el("div", {}, attributeControl(spec, value)));
      row.dataset.attribute = spec.name;
      const segments = attributeSegments(o, spec);
      if (segments) row.append(el("small", { className: "muted attribute-segments", textContent: segments }));
      return row;
    }));
  }

  document.addEventListener("keydown", (event) => {  // Shift+1..9: the quick action picker
    if (event.target.closest("input, select, textarea") || !event.shiftKey || event.ctrlKey || event.metaKey || event.altKey) return;
    const digit = /^Digit([1-9])$/.exec(event.code || "");
    const o = objects[selected];
    if (!digit || !isBox(o) || !data.editable) return;
    const spec = attributeSpecs(o.class).find((a) => a.kind === "multi" || a.kind === "select");
    const value = spec && spec.values[Number(digit[1]) - 1];
    if (value === undefined) return;
    event.preventDefault();
    if (spec.kind === "select") { setAttribute(spec.name, value); return; }
    const chosen = new Set(attributeValue(o, spec).value || []);
    if (chosen.has(value)) chosen.delete(value); else chosen.add(value);
    setAttribute(spec.name, spec.values.filter((v) => chosen.has(v)));
  });

  // ---- keyboard -----------------------------------------------------------------------
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, select, textarea")) return;
    const key = event.key.toLowerCase();
    if ((event.ctrlKey || event.metaKey) && key === "z") {
      event.preventDefault();
      if (event.shiftKey) redo(); else undo();
    } else if ((event.ctrlKey || event.metaKey) && key === "y") {
      event.preventDefault(); redo();
    } else if (event.key === " ") {
      event.preventDefault(); spaceDown = true; canvas.classList.add("panning");
    } else if (/^[1-9]$/.test(event.key) && data.classes[Number(event.key) - 1]) {
      pickClass(data.classes[Number(event.key) - 1].name);
    } else if (event.key === "0") {
      fit();
    } else if (event.key === "Delete" || event.key === "Backspace") {
      if (isBox(objects[selected])) { event.preventDefault(); removeObject(selected); }
    } else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      const step = (event.shiftKey ? 10 : 1) * (event.key === "ArrowLeft" ? -1 : 1);
      goFrame(frame + step);
    } else if (event.key === "Escape") {
      selected = -1; refresh();
    }
  });
  document.addEventListener("keyup", (event) => {
    if (event.key === " ") { spaceDown = false; canvas.classList.remove("panning"); }
  });

  // ---- controls -----------------------------------------------------------------------
  $("object-class").addEventListener("change", (event) => pickClass(event.target.value));
  $("object-track").addEventListener("change", (event) => linkTrack(event.target.value));
  $("delete-object").addEventListener("click", () => removeObject(selected));
  $("save-button").addEventListener("click", () => { dirty = true; flush(); });
  $("undo-button").addEventListener("click", undo);
  $("redo-button").addEventListener("click", redo);
  $("fit-button").addEventListener("click", fit);
  $("prev-frame").addEventListener("click", () => goFrame(frame - 1));
  $("next-frame").addEventListener("click", () => goFrame(frame + 1));
  $("frame-slider").addEventListener("change", (event) => goFrame(Number(event.target.value)));
  $("frame-number").addEventListener("change", (event) => goFrame(Number(event.target.value)));
  // a phone's address bar changes the height as the page scrolls: refit (and lose the zoom) only
  // when the width changed
  window.addEventListener("resize", () => { if ($("canvas-wrap").clientWidth !== fittedWidth) fit(); });
  window.addEventListener("beforeunload", (event) => {
    if (dirty || pending) { flush(); event.preventDefault(); }
  });

  // ---- suggestions from a detector (shown when the user has ready models) --------------
  async function loadModels() {
    if (!data.editable || !$("suggest-panel")) return;
    const response = await fetch("/api/v1/models").catch(() => null);
    const models = response && response.ok ? (await response.json()).filter((m) => m.state === "ready") : [];
    if (!models.length) return;
    $("suggest-model").replaceChildren(...models.map((m) => el("option", { value: m.id, textContent: m.name })));
    $("suggest-panel").hidden = false;
  }

  async function suggest() {
    message("Asking the model…");
    const response = await fetch(`/api/v1/models/${$("suggest-model").value}/predict`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": window.forgeCsrfToken() },
      body: JSON.stringify({ video_id: data.video_id, frame, dataset_id: data.dataset_id }),
    }).catch(() => null);
    const answer = response ? await response.json().catch(() => ({})) : {};
    if (!response || !response.ok) { message(answer.detail || "The model could not run."); return; }
    const usable = answer.boxes.filter((b) => b.class_name);
    // each suggestion becomes an ordinary box (a new object): edit, re-class or delete it, undo removes them all
    change(() => { for (const b of usable) objects.push({ track_id: nextTrackId(), class: b.class_name, box: b.box }); });
    const skipped = answer.boxes.length - usable.length;
    message(`${usable.length} boxes suggested` + (skipped ? `, ${skipped} of classes this dataset does not have` : "") + ".");
  }

  if ($("suggest-button")) $("suggest-button").addEventListener("click", suggest);
  loadModels();
  fit();
  loadImage();
  refresh();
})();
