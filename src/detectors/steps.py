"""The detector work that runs in the worker's process pool: plain picklable functions that
import neither the worker nor the database (a spawned pool process imports this module)."""

from __future__ import annotations

import shutil

import numpy as np

from src.detectors import inference, master
from src.vision import disagreement, fusion
from src.vision.types import PropagationResult


def merge(sources: list[master.Source], out_dir: str, progress_path: str | None = None) -> dict:
    shutil.rmtree(out_dir, ignore_errors=True)
    return master.merge(sources, out_dir)


def run_detections(model_path: str, kind: str, model_classes: list[str], imgsz: int | None, video_path: str,
                   progress_path: str | None = None) -> inference.VideoDetections:
    """Detector + ByteTrack over the whole video (run in the pool)."""
    return inference.track_video(model_path, kind, model_classes, video_path, imgsz=imgsz, progress_path=progress_path)


def predict_frame(model_path: str, kind: str, model_classes: list[str], imgsz: int | None, video_path: str,
                  frame: int, conf: float) -> list[dict]:
    """The model's boxes on one frame of the video (the editor's Suggest boxes)."""
    from src.vision.video import read_frame

    return inference.predict(model_path, kind, model_classes, read_frame(video_path, frame), imgsz=imgsz, conf=conf)


def save_detections(detections: inference.VideoDetections, path: str) -> None:
    with open(path, "wb") as f:
        np.savez_compressed(f, classes=np.array(detections.classes, dtype=str), boxes=detections.boxes,
                            scores=detections.scores, class_ids=detections.class_ids, track_ids=detections.track_ids)


def load_detections(path: str) -> inference.VideoDetections:
    with np.load(path) as data:
        return inference.VideoDetections([str(c) for c in data["classes"]], data["boxes"], data["scores"],
                                         data["class_ids"], data["track_ids"])


def class_map(model_classes: list[str], track_classes: list[str]) -> dict[int, str]:
    """Detector class id -> the draft's class of the same name (case-insensitive)."""
    lookup = {n.casefold(): n for n in track_classes}
    return {i: lookup[n.casefold()] for i, n in enumerate(model_classes) if n.casefold() in lookup}


def model_scores(detections: inference.VideoDetections, tracks, track_classes: list[str],
                 counts: dict[str, int]) -> list[float]:
    """Per-frame disagreement between the detections and the propagated tracks (classes by name)."""
    mapping = {i: track_classes.index(n) for i, n in class_map(detections.classes, track_classes).items()}
    other = len(track_classes)  # a detector class the draft does not have
    mapped = np.vectorize(lambda c: mapping.get(int(c), other) if c >= 0 else -1, otypes=[np.int32])(
        detections.class_ids) if detections.class_ids.size else detections.class_ids
    n = detections.boxes.shape[0]
    boxes, ids = disagreement.tracks_as_arrays(tracks, track_classes, n)
    rarity = disagreement.rarity_from_counts(track_classes, counts)
    scores = disagreement.frame_scores(boxes, ids, detections.boxes, detections.scores, mapped, rarity=rarity)
    return [float(s) for s in scores]


def fuse_result(result: PropagationResult, detections: inference.VideoDetections,
                track_classes: list[str]) -> tuple[PropagationResult, int]:
    """The propagation with lost / hesitant frames filled by the detector; and how many boxes were."""
    tracks = fusion.fuse(result.tracks, detections, class_map(detections.classes, track_classes))
    fused = PropagationResult(result.video, tracks, list(result.hard_frames), result.seconds)
    return fused, fusion.filled_frames(result.tracks, tracks)


def evaluate(model_path: str, kind: str, model_classes: list[str], imgsz: int | None, master_dir: str, split: str,
             work_dir: str) -> dict[str, float]:
    """A model's metrics on one split of a master dataset, classes mapped by name (run in the pool)."""
    from src.detectors import training

    shutil.rmtree(work_dir, ignore_errors=True)
    try:
        data_yaml = master.for_model(master_dir, split, model_classes, f"{work_dir}/data")
        return training.evaluate(model_path, data_yaml, imgsz=imgsz or 640, split="val", out_dir=f"{work_dir}/runs")
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
