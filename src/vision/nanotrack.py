"""NanoTrack v2, a small learned Siamese tracker, run with onnxruntime.

Two ONNX files make the model (``MODEL_FILES``): a MobileNetV3 backbone that turns a crop into
features (127x127 template -> (48, 8, 8), 255x255 search region -> (48, 16, 16)) and a head
that correlates the two into a 16x16 map of object scores and box offsets. Pre- and
post-processing follow OpenCV's ``tracker_nano.cpp`` (itself from the model's author): a
square context crop around the box, a cosine window, penalties for changes of size and
aspect ratio, and a size update smoothed by the score. The files are not part of the
project: their folder comes from configuration (``TRACKER_MODEL_DIR``; ``forge tracker
download`` fetches them and checks their sha256).

Crops here come from the engine's working-resolution frames (src.vision.frames): a colour
store (the engine's learned passes ask for one) gives the chroma planes beside the grey
pyramid, and crops are in colour as the model was trained; a grey frame is replicated to
three channels.
"""

from __future__ import annotations

import copy
import hashlib
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from src.vision.confidence import learned_confidence
from src.vision.frames import Pyramid
from src.vision.kernels import unit
from src.vision.tracker import _EYE, ObjectTracker, StepResult, sample

MODEL_FILES = {
    "backbone": "nanotrack_backbone_sim.onnx",
    "head": "nanotrack_head_sim.onnx",
}
MODEL_SHA256 = {
    "nanotrack_backbone_sim.onnx": "530bdd0cd00f19afab79a863e71ba71e3312395a5dc9151af675082bdaaa2fc4",
    "nanotrack_head_sim.onnx": "0d8c0637be849f092cc7236cae02e55c8b9455ebe37ba50601d6115db4247cd9",
}
MODEL_URLS = {
    name: f"https://github.com/HonglinChu/SiamTrackers/raw/master/NanoTrack/models/nanotrackv2/{name}"
    for name in MODEL_SHA256
}
ENGINE_NAME = "nanotrack-v2"
# The search region follows the camera only when it would carry the object this many box
# sizes (less is well inside NanoTrack's own search region, and a textureless background
# can mislead the camera estimate)
CAMERA_MIN_SHIFT = 0.5
EDGE_PX = 2.0  # a box within this of the frame edge touches it (working px) ...
EXIT_SPEED = 0.5  # ... and moves out through it at this speed (px per frame) or more

EXEMPLAR = 127  # template crop, px
INSTANCE = 255  # search crop, px
STRIDE = 16
SCORE_SIZE = 16


@dataclass(frozen=True)
class NanoParams:
    """Post-processing of NanoTrack (the values of its author and of OpenCV)."""

    window_influence: float = 0.455  # weight of the cosine window against the score map
    lr: float = 0.37  # share of the predicted size taken per step (times penalty x score)
    context: float = 0.5  # context around the box in the crops, in (w + h) / 2
    penalty_k: float = 0.055  # cost of a change of size or aspect ratio


def model_paths(model_dir: str | Path) -> dict[str, Path]:
    d = Path(model_dir)
    return {role: d / name for role, name in MODEL_FILES.items()}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_problem(model_dir: str | Path | None) -> str | None:
    """Why the model in ``model_dir`` cannot be used (None: it can): no folder, a missing
    file, or no onnxruntime. Hashes are checked by the download command, not here."""
    if not model_dir:
        return "no tracker model configured (TRACKER_MODEL_DIR)"
    missing = [p.name for p in model_paths(model_dir).values() if not p.is_file()]
    if missing:
        return f"{model_dir}: missing {', '.join(missing)}"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnxruntime is not installed"
    return None


def _dynamic(path: Path) -> bytes:
    """The ONNX model at ``path`` with a free batch dimension (the files declare batch 1), so
    that one call runs several objects."""
    import onnx

    model = onnx.load(str(path))
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        for k, name in enumerate(("batch", None, "height", "width")[: len(dims)]):
            if name is not None:  # the backbone takes the 127 px template too
                dims[k].dim_param = f"{value.name}_{name}"
    del model.graph.value_info[:]  # inner shapes inferred again for the real input
    # Reshapes written for batch 1 ([1, 16], [1, 48, -1], ...): 0 keeps the input's batch
    from onnx import numpy_helper

    shapes = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Reshape" and node.input[1] in shapes:
            init = shapes[node.input[1]]
            value = numpy_helper.to_array(init).copy()
            if value.ndim == 1 and len(value) and value[0] == 1:
                value[0] = 0
                init.CopyFrom(numpy_helper.from_array(value, init.name))
    return model.SerializeToString()


class NanoModel:
    """The two onnxruntime sessions; one per process and model folder (``load``)."""

    _cache: dict[str, NanoModel] = {}
    _lock = threading.Lock()

    def __init__(self, model_dir: str | Path, threads: int = 1):
        import onnxruntime as ort

        paths = model_paths(model_dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        self.backbone = ort.InferenceSession(_dynamic(paths["backbone"]), opts, providers=providers)
        self.head = ort.InferenceSession(_dynamic(paths["head"]), opts, providers=providers)
        self.providers = self.backbone.get_providers()

    @classmethod
    def load(cls, model_dir: str | Path) -> NanoModel:
        key = str(Path(model_dir).resolve())
        with cls._lock:
            if key not in cls._cache:
                cls._cache[key] = cls(model_dir)
            return cls._cache[key]

    def features(self, crops: np.ndarray) -> np.ndarray:
        """``(n, h, w, 3)`` uint8 crops -> backbone features ``(n, 48, h/16, w/16)`` float32."""
        blob = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), np.float32)
        return self.backbone.run(None, {"input": blob})[0]

    def head_maps(self, template: np.ndarray, search: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Template ``(n, 48, 8, 8)`` and search ``(n, 48, 16, 16)`` features -> object score
        ``(n, 16, 16)`` in [0, 1] and box offsets ``(n, 4, 16, 16)`` (search-crop px)."""
        cls_, box = self.head.run(None, {"input1": template, "input2": search})
        e = np.exp(cls_ - cls_.max(axis=1, keepdims=True))
        return e[:, 1] / e.sum(axis=1), box


_g = (np.arange(SCORE_SIZE, dtype=np.float32) - SCORE_SIZE // 2) * STRIDE + INSTANCE // 2
GRID_X, GRID_Y = np.meshgrid(_g, _g)  # search-crop position of each score cell
WINDOW = np.outer(np.hanning(SCORE_SIZE), np.hanning(SCORE_SIZE)).astype(np.float32)


def _change(r: np.ndarray) -> np.ndarray:
    return np.maximum(r, 1.0 / r)


def _sz(w, h):
    pad = (w + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))


def crop(frame: Pyramid, cx: float, cy: float, side: float, out: int) -> np.ndarray:
    """Square ``side`` x ``side`` region centred on (``cx``, ``cy``) of a frame, resampled to
    ``(out, out, 3)`` uint8 BGR (border replicated): in colour when the frame carries its
    chroma (``Frame.chroma``, at half the grey resolution), else the grey replicated."""
    x1, y1, x2, y2 = cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2
    g = sample(frame, x1, y1, x2, y2, out, out)
    chroma = getattr(frame, "chroma", None)
    if chroma is None:
        return np.repeat(g[:, :, None], 3, axis=2)
    c = sample(chroma, x1 / 2, y1 / 2, x2 / 2, y2 / 2, out, out)  # level-1 pixel j spans level-0 [2j, 2j + 2)
    return cv2.cvtColor(np.dstack([g, c]), cv2.COLOR_YCrCb2BGR)


class NanoState:
    """NanoTrack's state for one object: template features, centre and size (working px)."""

    def __init__(self, model: NanoModel, frame: Pyramid, box: np.ndarray, params: NanoParams = NanoParams()):
        self.model, self.params = model, params
        self.reset(box)
        side = self._context()
        self.template = model.features(crop(frame, *self.pos, side, EXEMPLAR)[None])

    def __copy__(self) -> NanoState:
        other = object.__new__(NanoState)
        other.__dict__.update(self.__dict__)
        return other

    def __getstate__(self) -> dict:
        """Pickled (a pass's checkpoint, src.vision.propagate) without the model: the process
        that goes on attaches its own (``LearnedObjectTracker.attach``)."""
        return {k: v for k, v in self.__dict__.items() if k != "model"}

    def moved(self, camera: np.ndarray, own: np.ndarray) -> NanoState:
        """A copy whose search centre follows the camera (``(2, 3)``, from the last frame to
        the next) and the object's own velocity ``own``: the region the object should be in."""
        from src.vision.tracker import warp_point

        other = copy.copy(self)
        other.pos = warp_point(camera, self.pos) + own
        return other

    def reset(self, box: np.ndarray) -> None:
        self.pos = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], np.float64)
        self.size = np.array([box[2] - box[0], box[3] - box[1]], np.float64)

    def _context(self) -> float:
        w, h = self.size
        c = self.params.context * (w + h)
        return math.sqrt((w + c) * (h + c))

    def search_crop(self, frame: Pyramid) -> tuple[np.ndarray, float]:
        """The 255 px search crop around the last position and its scale (crop px per frame px)."""
        s_z = self._context()
        scale = EXEMPLAR / s_z
        return crop(frame, *self.pos, s_z * INSTANCE / EXEMPLAR, INSTANCE), scale

    def update(self, score: np.ndarray, offsets: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
        """Apply one search result (``score`` (16, 16), ``offsets`` (4, 16, 16), the crop's
        ``scale``): the new box ``(4,)`` xyxy and its score (penalized, in [0, 1])."""
        p = self.params
        x1, y1 = GRID_X - offsets[0], GRID_Y - offsets[1]
        x2, y2 = GRID_X + offsets[2], GRID_Y + offsets[3]
        w, h = np.maximum(x2 - x1, 1e-3), np.maximum(y2 - y1, 1e-3)
        tw, th = self.size * scale
        s_c = _change(_sz(w, h) / _sz(tw, th))
        r_c = _change((tw / th) / (w / h))
        penalty = np.exp(-(r_c * s_c - 1) * p.penalty_k)
        pscore = penalty * score
        best = int(np.argmax(pscore * (1 - p.window_influence) + WINDOW * p.window_influence))
        i, j = divmod(best, SCORE_SIZE)
        cx = (x1[i, j] + x2[i, j]) / 2
        cy = (y1[i, j] + y2[i, j]) / 2
        lr = float(penalty[i, j] * score[i, j] * p.lr)
        self.pos = self.pos + (np.array([cx, cy]) - INSTANCE // 2) / scale
        self.size = (1 - lr) * self.size + lr * np.array([w[i, j], h[i, j]]) / scale
        self.size = np.maximum(self.size, 4.0)
        b = np.array([*(self.pos - self.size / 2), *(self.pos + self.size / 2)])
        return b, float(pscore[i, j])


def track_batch(states: list[NanoState], frames: list[Pyramid]) -> list[tuple[np.ndarray, float]]:
    """One step of several objects (each on its own frame) in one backbone and one head call:
    [(box, score)] in order."""
    if not states:
        return []
    crops, scales = zip(*(s.search_crop(f) for s, f in zip(states, frames)))
    model = states[0].model
    feats = model.features(np.stack(crops))
    score, offsets = model.head_maps(np.concatenate([s.template for s in states]), feats)
    return [s.update(score[k], offsets[k], scales[k]) for k, s in enumerate(states)]


class LearnedObjectTracker(ObjectTracker):
    """The engine's tracker with NanoTrack as its motion step: the box of each step comes from
    the learned model (no LK, no NCC pull, no scale search: NanoTrack regresses the box),
    while confidence, the lost state, re-detection while lost, leaving the picture and the
    open-ended evidence check are those of ``ObjectTracker`` (NCC against the keyframe and
    recent crops). ``step`` takes an already computed NanoTrack result when the caller ran
    several objects in one batch (``track_batch``)."""

    def __init__(self, frame: Pyramid, box: np.ndarray, open_end: bool = False, *, model: NanoModel):
        super().__init__(frame, box, open_end)
        self.nano = NanoState(model, frame, self.box)
        self.nano_score = 1.0

    def __copy__(self):
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__)
        other.nano = copy.copy(self.nano)  # update() rebinds its arrays, never mutates them
        return other

    def attach(self, model: NanoModel) -> None:
        """Use ``model`` (this process's sessions) after being unpickled from a checkpoint."""
        self.nano.model = model

    def _exit_guard(self, old: np.ndarray, box: np.ndarray, dt: int) -> np.ndarray:
        """A Siamese tracker does not let its object leave: when the object goes out past an
        edge its box jumps back onto whatever looks most alike inside. So while the box touches
        an edge and moves out through it, a step that slows down (the model regresses the box
        onto the part still in view), stops or turns back inward is not believed: the box goes
        on with its velocity (past the edge, where ``_settle`` finds it
        has left the picture)."""
        v = self.velocity
        edge_out = ((old[0] <= EDGE_PX and v[0] < -EXIT_SPEED) or (old[2] >= self.w - EDGE_PX and v[0] > EXIT_SPEED)
                    or (old[1] <= EDGE_PX and v[1] < -EXIT_SPEED) or (old[3] >= self.h - EDGE_PX and v[1] > EXIT_SPEED))
        if not edge_out:
            return box
        move = ((box[:2] + box[2:]) - (old[:2] + old[2:])) / 2
        if float(move @ v) >= dt * float(v @ v):
            return box
        w, h = old[2] - old[0], old[3] - old[1]  # the object's extent: the clipped box grows back
        w, h = max(w, self.good_wh[0]), max(h, self.good_wh[1])
        c = (old[:2] + old[2:]) / 2 + dt * v
        return np.array([c[0] - w / 2, c[1] - h / 2, c[0] + w / 2, c[1] + h / 2])

    def search_state(self, dt: int = 1) -> NanoState:
        """The NanoTrack state to search the next frame with: moved with the camera (``camera``,
        set by the caller) and the object's own motion."""
        if self.camera is _EYE:
            return copy.copy(self.nano)
        moved = self.nano.moved(self.camera, dt * self.own_velocity)
        if np.hypot(*(moved.pos - self.nano.pos)) < CAMERA_MIN_SHIFT * max(self.nano.size):
            return copy.copy(self.nano)  # well inside the search region anyway
        return moved

    def wants_batch(self) -> bool:
        return not self.lost

    def step(self, frame: Pyramid, dt: int = 1, nano: tuple | None = None) -> StepResult:
        """``nano``: (box, score, NanoState after it) from ``track_batch`` on ``frame``."""
        self.steps += dt
        if self.lost:
            res = self._reacquire(frame)
            if not self.lost:  # found again: NanoTrack starts from there
                self.nano.reset(self.box)
            self.prev = frame
            return res
        old = self.box.copy()
        if nano is not None:
            box, score, self.nano = nano
        else:
            self.nano = self.search_state(dt)
            box, score = track_batch([self.nano], [frame])[0]
        self.nano_score = score
        box = self._exit_guard(old, box, dt)
        cur = sample(frame, *box, self.tw, self.th).astype(np.float32)
        cur_u = unit(cur)
        ncc_key = float(cur_u.dot(self.key_u))
        ncc_rec = float(cur_u.dot(self.rec_u))
        size = max(old[2] - old[0], old[3] - old[1])
        move = ((box[:2] + box[2:]) - (old[:2] + old[2:])) / 2 / dt
        motion = math.hypot(*(move - self.velocity)) / size
        area = (box[2] - box[0]) * (box[3] - box[1])
        learned = np.array(
            [score, ncc_key, ncc_rec, min(motion, 2.0), abs(np.log(area / self.key_area)), np.log1p(self.steps)],
            np.float32,
        )
        # the step's signals in the layout of FEATURES too (lost-state and bench code read them)
        feats = np.array([0.0, score, ncc_key, ncc_rec, 0.0, learned[3], learned[4], learned[5], 0.0], np.float32)
        self.learned_features = learned  # (bench.fit_learned reads them)
        res = self._settle(frame, box, move, feats, learned_confidence(learned), cur, cur_u, ncc_key, ncc_rec, dt)
        if self.lost:
            self.nano.reset(self.box)
        return res
