"""MOT Challenge sequence: `gt/gt.txt`, `seqinfo.ini`, `img1/NNNNNN.jpg`, the layout of one
MOT16/17/20 sequence folder (py-motmetrics, TrackEval).

`gt.txt` rows: `frame,id,bb_left,bb_top,bb_width,bb_height,conf,class,visibility` with
`frame` 1-based, `id` the track id, the box in pixels with MOT's 1-based coordinates
(`bb_left` = x1 + 1: py-motmetrics subtracts the 1 again on loading), `conf` 1 (the "consider" flag of
MOT ground truth), `class` the 1-based class id (`classes.txt`), `visibility` 1 (not
measured). The sequence is the delivered frames in time order, numbered 1..seqLength without
gaps (a tracker run on `img1/` sees them in that order); `frames.csv` maps each MOT frame to
its video frame, and `frameRate` is the delivered rate (fps / N when every Nth frame is kept).
Source and confidence of each box are in `provenance.json` (the gt `conf` column is a flag).
"""

from __future__ import annotations

import re
from pathlib import Path

from src.vision.formats.model import ExportSpec, LabeledFrame, frame_step
from src.vision.formats.provenance import entry, write_provenance


def mot_file_name(index: int) -> str:
    return f"{index + 1:06d}.jpg"


def sequence_name(spec: ExportSpec) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", spec.dataset_name).strip("-") or "sequence"


def write_mot(root: Path, spec: ExportSpec, sequence: list[LabeledFrame], images: Path) -> list[tuple[Path, str]]:
    """`sequence`: every delivered frame in time order (frames without objects too)."""
    (root / "gt").mkdir(parents=True, exist_ok=True)
    lines, provenance = [], []
    for index, f in enumerate(sequence):
        for o in sorted(f.objects, key=lambda o: o.track_id):
            x1, y1, x2, y2 = o.box
            # MOT's pixel coordinates are 1-based (MATLAB's): the top-left pixel is (1, 1)
            lines.append(f"{index + 1},{o.track_id},{x1 + 1:.2f},{y1 + 1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},1,{o.class_id + 1},1")
            provenance.append(entry(f.frame, o, mot_frame=index + 1))
    (root / "gt" / "gt.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    step = frame_step([f.frame for f in sequence])
    rate = spec.fps / step if step else spec.fps * len(sequence) / max(1, spec.n_frames)
    (root / "seqinfo.ini").write_text(
        "[Sequence]\n"
        f"name={sequence_name(spec)}\nimDir=img1\nframeRate={rate:.4g}\nseqLength={len(sequence)}\n"
        f"imWidth={spec.width}\nimHeight={spec.height}\nimExt=.jpg\n"
    )
    (root / "classes.txt").write_text("".join(f"{i + 1} {name}\n" for i, name in enumerate(spec.classes)))
    (root / "frames.csv").write_text("mot_frame,video_frame\n" + "".join(f"{i + 1},{f.frame}\n" for i, f in enumerate(sequence)))
    write_provenance(root, provenance)
    return [(images / f.file_name, f"img1/{mot_file_name(i)}") for i, f in enumerate(sequence)]
