"""`provenance.json`: where each box came from, for the formats that have no place for it
(YOLO, MOT, AVA). COCO and CVAT carry the same facts on the box itself.

    {"sources": ["seed", "propagated", "reviewed", "detector"],
     "boxes": [{"frame": 12, "track_id": 3, "source": "seed", "confidence": 1.0, ...locator}]}

`frame` is the 0-based frame of the video and `track_id` the track; together they name one
box. The locator says where the box sits in that format (YOLO: `file` and 0-based `line` of
the label file; MOT: the 1-based `mot_frame`; AVA: the 0-based `row` of the CSV).
"""

from __future__ import annotations

import json
from pathlib import Path

from src.vision.formats.model import SOURCES, LabeledObject


def entry(frame: int, obj: LabeledObject, **locator) -> dict:
    return {"frame": int(frame), "track_id": int(obj.track_id), "source": obj.source,
            "confidence": round(float(obj.confidence), 4), **locator}


def write_provenance(root: Path, boxes: list[dict]) -> None:
    (root / "provenance.json").write_text(json.dumps({"sources": list(SOURCES), "boxes": boxes}, separators=(",", ":")))
