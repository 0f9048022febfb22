"""Load, validate and run detectors (ultralytics `.pt` checkpoints and ONNX exports).

Plain functions over paths and numpy arrays, run in the worker's process pool (or a thread
of the web process for one-frame predictions). Importing ultralytics sets OpenCV to one
thread and OMP_NUM_THREADS=1; `ultralytics()` restores both, so a pool process that also
decodes and tracks keeps its speed. Nothing is ever downloaded: ultralytics' settings sync
is off, its config dir is under var/, and a download attempt raises `OfflineDownload`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from src.detectors import safe_load
from src.detectors.exceptions import InvalidModel, OfflineDownload

VALIDATION_FRAME = (480, 640)  # (h, w) of the blank frame a model must run on
_models: dict[tuple[str, float], Any] = {}


def ultralytics():
    """The `ultralytics` module, imported offline, with OpenCV / OpenMP threading restored."""
    import sys

    if "ultralytics" in sys.modules:
        safe_load.install()  # imported elsewhere first: still never a full unpickling
        return sys.modules["ultralytics"]
    from src.config import get_settings

    config_dir = get_settings().var_dir / "ultralytics"
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ["ULTRALYTICS_SAFE_LOAD"] = "1"  # models built from a checkpoint's yaml without eval()
    threads, omp = cv2.getNumThreads(), os.environ.get("OMP_NUM_THREADS")
    try:
        import ultralytics as module
    except ImportError as error:
        raise InvalidModel("This server cannot run detector models: its worker needs requirements/ml.txt "
                           "(torch + ultralytics; `make up WITH_ML=1`).") from error
    from ultralytics import settings
    from ultralytics.utils import downloads

    settings.update({"sync": False})

    def refuse(url="", *args, **kwargs):
        raise OfflineDownload(f"ultralytics tried to download {url or 'a file'}; Data Forge works offline. "
                              "Use a local checkpoint or an architecture yaml such as yolov8n.yaml.")

    downloads.safe_download = refuse
    safe_load.install()  # every checkpoint: weights_only=True with the allow-list (src/detectors/safe_load.py)
    cv2.setNumThreads(threads)
    if omp is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = omp
    return module


@dataclass
class ModelInfo:
    classes: list[str]
    imgsz: int | None  # fixed input size of an ONNX export; None for checkpoints
    boxes_on_blank: int


def _onnx_input(path: Path) -> int:
    """Check an ONNX file takes `[1, 3, H, W]` images (H == W) and gives `[1, 4 + nc, N]`; returns H."""
    try:
        import onnxruntime
    except ImportError as error:  # pragma: no cover - requirements/ml.txt pins it
        raise InvalidModel("ONNX models need onnxruntime on the worker; upload the .pt checkpoint instead.") from error
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - any load failure is the file's fault
        raise InvalidModel(f"This is not a readable ONNX model ({_short(error)}).") from error
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].shape[1] != 3:
        shapes = ", ".join(str(i.shape) for i in inputs)
        raise InvalidModel(f"The ONNX model's input is {shapes}; a detector exported by ultralytics takes one "
                           "image input shaped [1, 3, H, W].")
    h, w = inputs[0].shape[2], inputs[0].shape[3]
    if not isinstance(h, int) or not isinstance(w, int) or h != w or h < 32:
        raise InvalidModel(f"The ONNX model's input is {inputs[0].shape}; export it with a fixed square size "
                           "(e.g. imgsz=640).")
    if len(outputs) < 1 or len(outputs[0].shape) != 3:
        raise InvalidModel(f"The ONNX model's output is {outputs[0].shape if outputs else 'missing'}; a YOLO "
                           "detector gives [1, 4 + classes, boxes].")
    return h


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
    return text[:200]


def load(path: str | Path, kind: str):
    """The ultralytics model for a file (cached per path and modification time)."""
    path = Path(path)
    key = (str(path), path.stat().st_mtime)
    if key in _models:
        return _models[key]
    yolo = ultralytics().YOLO
    if kind == "onnx":
        safe_load.check_onnx(path)  # the graph is checked before onnxruntime runs it
    try:
        model = yolo(str(path), task="detect")
    except (OfflineDownload, InvalidModel):
        raise
    except Exception as error:  # noqa: BLE001 - torch.load / pickle / onnx errors: the file's fault
        raise InvalidModel(f"This file could not be loaded as an ultralytics detector ({_short(error)}).") from error
    if kind == "pt" and getattr(model, "task", "detect") != "detect":
        raise InvalidModel(f"This is a {model.task} model; Data Forge needs an object detector (task 'detect').")
    _models.clear()  # one model in memory per process
    _models[key] = model
    return model


def validate(path: str, kind: str, classes: list[str]) -> ModelInfo:
    """`validate_here` in a fresh child process under time and memory limits: an uploaded file
    is untrusted (src/detectors/safe_load.py)."""
    return ModelInfo(**safe_load.check_in_child(path, kind, classes))


def validate_here(path: str, kind: str, classes: list[str]) -> ModelInfo:
    """Load the model and run it on one blank frame; InvalidModel with a readable message otherwise.
    `classes` (may be empty: then the model's own names) must match the model's class count."""
    if kind == "onnx":
        safe_load.check_onnx(path)
    imgsz = _onnx_input(Path(path)) if kind == "onnx" else None
    model = load(path, kind)
    names = model.names if isinstance(getattr(model, "names", None), dict) else {}
    frame = np.full((*VALIDATION_FRAME, 3), 114, np.uint8)
    try:
        results = model.predict(frame, imgsz=imgsz or 320, verbose=False, device="cpu")
    except OfflineDownload:
        raise
    except Exception as error:  # noqa: BLE001
        raise InvalidModel(f"The model loaded but failed to run on a frame ({_short(error)}).") from error
    result = results[0]
    n_outputs = int(result.boxes.cls.max().item()) + 1 if len(result.boxes) else 0
    model_classes = [str(names[i]) for i in sorted(names)] if names else []
    if kind == "onnx" and not model_classes:
        raise InvalidModel("The ONNX model carries no class names; give them in `classes`.")
    if classes:
        if model_classes and len(classes) != len(model_classes):
            raise InvalidModel(f"The model has {len(model_classes)} classes ({', '.join(model_classes[:10])}) but "
                               f"{len(classes)} class names were given.")
        if n_outputs > len(classes):
            raise InvalidModel(f"The model predicts class {n_outputs - 1} but only {len(classes)} names were given.")
    return ModelInfo(classes=list(classes) or model_classes, imgsz=imgsz, boxes_on_blank=len(result.boxes))


def _boxes(result, classes: list[str]) -> list[dict[str, Any]]:
    boxes = result.boxes
    xyxy = boxes.xyxy.cpu().numpy()
    conf = boxes.conf.cpu().numpy()
    cls = boxes.cls.cpu().numpy().astype(int)
    out = []
    for b, c, k in zip(xyxy, conf, cls):
        name = classes[k] if 0 <= k < len(classes) else str(k)
        out.append({"box": [round(float(v), 2) for v in b], "class": name, "confidence": round(float(c), 4)})
    return out


def predict(path: str, kind: str, classes: list[str], frame: np.ndarray, *, imgsz: int | None = None,
            conf: float = 0.25) -> list[dict[str, Any]]:
    """Boxes on one BGR frame: `[{"box": [x1, y1, x2, y2] px, "class": name, "confidence"}]`."""
    model = load(path, kind)
    results = model.predict(frame, imgsz=imgsz or 640, conf=conf, verbose=False, device=_device())
    return _boxes(results[0], classes)


def _device() -> str | int:
    import torch

    return 0 if torch.cuda.is_available() else "cpu"


@dataclass
class VideoDetections:
    """Per-frame detections of a whole video, padded to `k` per frame.

    boxes: `(n_frames, k, 4)` float32 xyxy px, NaN where no detection; scores: `(n_frames, k)`
    float32 (0 pad); classes: `(n_frames, k)` int32 index into `classes` (-1 pad);
    track_ids: `(n_frames, k)` int32 ByteTrack ids (-1 when not tracked)."""

    classes: list[str]
    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    track_ids: np.ndarray


def track_video(path: str, kind: str, classes: list[str], video_path: str, *, imgsz: int | None = None,
                conf: float = 0.1, progress_path: str | None = None) -> VideoDetections:
    """Run the detector over every frame with ByteTrack association (`model.track(persist=True)`)."""
    from src.vision.progress import ProgressFile
    from src.vision.video import iter_frames, probe

    model = load(path, kind)
    n = probe(video_path).frames
    progress = ProgressFile(Path(progress_path)) if progress_path else None
    per_frame: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for i, frame in enumerate(iter_frames(video_path)):
        results = model.track(frame, persist=True, tracker="bytetrack.yaml", imgsz=imgsz or 640, conf=conf,
                              verbose=False, device=_device())
        b = results[0].boxes
        ids = b.id.cpu().numpy().astype(np.int32) if b.id is not None else np.full(len(b), -1, np.int32)
        per_frame.append((b.xyxy.cpu().numpy().astype(np.float32), b.conf.cpu().numpy().astype(np.float32),
                          b.cls.cpu().numpy().astype(np.int32), ids))
        if progress:
            progress(i + 1, n)
    _reset_tracker(model)
    return pack(per_frame, classes, n_frames=max(n, len(per_frame)))


def _reset_tracker(model) -> None:
    predictor = getattr(model, "predictor", None)
    for tracker in getattr(predictor, "trackers", None) or []:
        tracker.reset()


def pack(per_frame: list[tuple[np.ndarray, ...]], classes: list[str], *, n_frames: int) -> VideoDetections:
    """Pad a list of per-frame `(boxes (m, 4), scores (m,), class_ids (m,), track_ids (m,))`."""
    k = max([len(p[0]) for p in per_frame] + [1])
    boxes = np.full((n_frames, k, 4), np.nan, np.float32)
    scores = np.zeros((n_frames, k), np.float32)
    class_ids = np.full((n_frames, k), -1, np.int32)
    track_ids = np.full((n_frames, k), -1, np.int32)
    for f, (b, s, c, t) in enumerate(per_frame):
        m = len(b)
        boxes[f, :m], scores[f, :m], class_ids[f, :m], track_ids[f, :m] = b, s, c, t
    return VideoDetections(list(classes), boxes, scores, class_ids, track_ids)
