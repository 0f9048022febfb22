"""Ultralytics detection layout: images/{train,val,test}, labels/{...}, data.yaml.

The label files are Ultralytics' own five columns (`class cx cy w h`, normalised), so
`ultralytics.data.utils.check_det_dataset` and its loaders read them as they are (a sixth
column would make Ultralytics refuse the label). Track ids ride beside them:
- `provenance.json` (every YOLO zip): per box its label file and 0-based line, the frame,
  the track id, its source and confidence;
- with `tracks=True` (the `yolo_track` format) also `tracks/{split}/frame_NNNNNN.txt`: one
  track id per line, line i for line i of the label file of the same name;
- when the dataset has attributes (docs/attributes.md), `attributes.json`: the schemas and, per
  box (label file, 0-based line, frame, track id), its values: YOLO has no place for them.
"""

from __future__ import annotations

import json
from pathlib import Path

from src.vision.formats.model import ExportSpec, LabeledFrame
from src.vision.formats.provenance import entry, write_provenance

YOLO_SPLIT = {"train": "train", "valid": "val", "test": "test"}


def yolo_line(class_id: int, box, width: int, height: int) -> str:
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
    w, h = (x2 - x1) / width, (y2 - y1) / height
    return f"{class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"


def _text(lines: list[str]) -> str:
    return "\n".join(lines) + ("\n" if lines else "")


def write_yolo(root: Path, spec: ExportSpec, frames: list[LabeledFrame], images: Path, *,
               tracks: bool = False) -> list[tuple[Path, str]]:
    """Write labels and data.yaml under `root`; returns (source image, archive name) pairs to add."""
    used = sorted({YOLO_SPLIT[f.split] for f in frames}) or ["train"]
    for split in used:
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        if tracks:
            (root / "tracks" / split).mkdir(parents=True, exist_ok=True)
    image_entries, provenance, valued = [], [], []
    for f in frames:
        split = YOLO_SPLIT[f.split]
        label_name = f"labels/{split}/{f.file_name.replace('.jpg', '.txt')}"
        (root / label_name).write_text(_text([yolo_line(o.class_id, o.box, spec.width, spec.height) for o in f.objects]))
        if tracks:
            (root / "tracks" / split / f.file_name.replace(".jpg", ".txt")).write_text(_text([str(o.track_id) for o in f.objects]))
        provenance += [entry(f.frame, o, file=label_name, line=i) for i, o in enumerate(f.objects)]
        valued += [{"file": label_name, "line": i, "frame": f.frame, "track_id": o.track_id, "values": o.attributes}
                   for i, o in enumerate(f.objects) if o.attributes is not None]
        image_entries.append((images / f.file_name, f"images/{split}/{f.file_name}"))
    write_provenance(root, provenance)
    if spec.attributes:
        (root / "attributes.json").write_text(json.dumps(
            {"attributes": [a.as_dict() for a in spec.attributes], "boxes": valued}, separators=(",", ":")))
    names = "\n".join(f"  {i}: {_yaml_str(name)}" for i, name in enumerate(spec.classes))
    val = "val" if "val" in used else "train"
    test = "test: images/test\n" if "test" in used else ""
    (root / "data.yaml").write_text(
        # no `path:` key: Ultralytics then resolves the folders next to this file
        f"# {spec.dataset_name}: exported by Data Forge\ntrain: images/train\nval: images/{val}\n{test}"
        f"nc: {len(spec.classes)}\nnames:\n{names}\n"
    )
    return image_entries


def _yaml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
