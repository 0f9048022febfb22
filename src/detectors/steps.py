"""The detector work that runs in the worker's process pool: plain picklable functions that
import neither the worker nor the database (a spawned pool process imports this module)."""

from __future__ import annotations

import shutil

import numpy as np

from src.detectors import disagreement, inference, master


def merge(sources: list[master.Source], out_dir: str, progress_path: str | None = None) -> dict:
    shutil.rmtree(out_dir, ignore_errors=True)
    return master.merge(sources, out_dir)


def run_model_scores(model_path: str, kind: str, model_classes: list[str], imgsz: int | None, video_path: str,
                     tracks, track_classes: list[str], counts: dict[str, int],
                     progress_path: str | None = None) -> list[float]:
    """Detector + ByteTrack over the video, compared with the propagated tracks: per-frame
    disagreement scores (run in the pool). Model classes are mapped onto the draft's by name."""
    detections = inference.track_video(model_path, kind, model_classes, video_path, imgsz=imgsz,
                                       progress_path=progress_path)
    lookup = {n.casefold(): i for i, n in enumerate(track_classes)}
    mapped = np.vectorize(lambda c: lookup.get(model_classes[c].casefold(), len(track_classes))
                          if 0 <= c < len(model_classes) else -1, otypes=[np.int32])(detections.class_ids) \
        if detections.class_ids.size else detections.class_ids
    n = detections.boxes.shape[0]
    boxes, ids = disagreement.tracks_as_arrays(tracks, track_classes, n)
    rarity = disagreement.rarity_from_counts(track_classes, counts)
    scores = disagreement.frame_scores(boxes, ids, detections.boxes, detections.scores, mapped, rarity=rarity)
    return [float(s) for s in scores]
