"""AVA-style CSV: `video_id,timestamp_s,x1,y1,x2,y2,class_id,track_id` with coordinates
normalised to [0, 1], sampled at `ava_rate` per second over the whole video, plus the label
map (`label_map.pbtxt`, 1-based ids as in AVA)."""

from __future__ import annotations

import csv
from pathlib import Path

from src.vision.formats.model import ExportSpec
from src.vision.types import PropagationResult

AVA_COLUMNS = ["video_id", "timestamp_s", "x1", "y1", "x2", "y2", "class_id", "track_id"]


def ava_rows(spec: ExportSpec, result: PropagationResult):
    class_ids = {name: i + 1 for i, name in enumerate(spec.classes)}
    step = 1.0 / spec.ava_rate
    t = 0.0
    while True:
        frame = round(t * spec.fps)
        if frame >= spec.n_frames:
            return
        for track in sorted(result.tracks, key=lambda tr: tr.track_id):
            if not track.present[frame]:
                continue
            x1, y1, x2, y2 = (float(v) for v in track.boxes[frame])
            yield [spec.video_id, f"{t:.3f}", f"{x1 / spec.width:.6f}", f"{y1 / spec.height:.6f}",
                   f"{x2 / spec.width:.6f}", f"{y2 / spec.height:.6f}", class_ids[track.class_name], track.track_id]
        t += step


def write_ava(root: Path, spec: ExportSpec, result: PropagationResult) -> None:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "annotations.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(AVA_COLUMNS)
        writer.writerows(ava_rows(spec, result))
    items = "".join(f'item {{\n  name: "{name}"\n  id: {i + 1}\n}}\n' for i, name in enumerate(spec.classes))
    (root / "label_map.pbtxt").write_text(items)
