"""COCO JSON: RF-DETR's layout (train/ valid/ test/ each with _annotations.coco.json next to
the images) and a single-file variant (annotations.coco.json at the root, whose file names
point into those folders, so no image is stored twice). There is no images/ folder.

RF-DETR opens test/ whatever the split: when the dataset has no test frames, test/ holds the
valid frames again and says so (`info.description`, `info.copy_of: "valid"` in its JSON and
`test/README.txt`); the single file lists each image once, with its real split.

Each annotation carries its provenance in `attributes` (as CVAT's COCO export does):
`{"track_id", "source": seed | propagated | reviewed | detector, "confidence"}`; the older
top-level `track_id` and `score` stay. The dataset's own attributes (docs/attributes.md) join
them there with the track's value on that frame: `"attributes": {..., "action": ["walk"]}`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from src.vision.formats.model import ExportSpec, LabeledFrame

RFDETR_SPLITS = ("train", "valid", "test")


def coco_document(spec: ExportSpec, frames: list[LabeledFrame], *, with_folder: bool = False,
                  description: str | None = None, copy_of: str | None = None) -> dict:
    """COCO detection dict; category ids are 1-based (0 is reserved in many tools)."""
    images, annotations = [], []
    for image_id, f in enumerate(frames, start=1):
        name = f"{f.split}/{f.file_name}" if with_folder else f.file_name
        images.append({
            "id": image_id, "file_name": name, "width": spec.width, "height": spec.height,
            "frame_index": f.frame, "split": f.split,
        })
        for o in f.objects:
            x1, y1, x2, y2 = o.box
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": o.class_id + 1,
                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                "area": round((x2 - x1) * (y2 - y1), 2), "iscrowd": 0,
                "track_id": o.track_id, "score": round(o.confidence, 4),
                "attributes": {"track_id": o.track_id, "source": o.source, "confidence": round(o.confidence, 4),
                               **(o.attributes or {})},
            })
    info = {"description": description or spec.dataset_name, "version": "1.0", "date_created": datetime.now(UTC).isoformat()}
    if copy_of:
        info["copy_of"] = copy_of
    return {
        "info": info,
        "licenses": [],
        "categories": [{"id": i + 1, "name": name, "supercategory": "object"} for i, name in enumerate(spec.classes)],
        "images": images,
        "annotations": annotations,
    }


def write_coco(root: Path, spec: ExportSpec, frames: list[LabeledFrame], images: Path) -> list[tuple[Path, str]]:
    entries = []
    by_split = {s: [f for f in frames if f.split == s] for s in RFDETR_SPLITS}
    copies = {}
    if not by_split["test"] and by_split["valid"]:
        by_split["test"], copies["test"] = by_split["valid"], "valid"  # RF-DETR always opens test/
    for split, split_frames in by_split.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        description = None
        if split in copies:
            description = (f"{spec.dataset_name}: no test split was chosen; this test/ is a copy of "
                           f"{copies[split]}/ (RF-DETR expects a test folder); do not report it as a test score")
            (root / split / "README.txt").write_text(description + "\n")
        document = coco_document(spec, split_frames, description=description, copy_of=copies.get(split))
        (root / split / "_annotations.coco.json").write_text(json.dumps(document))
        entries += [(images / f.file_name, f"{split}/{f.file_name}") for f in split_frames]
    (root / "annotations.coco.json").write_text(json.dumps(coco_document(spec, frames, with_folder=True)))
    return entries
