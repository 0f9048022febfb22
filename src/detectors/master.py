"""Merge ready datasets' YOLO exports into one master dataset (pure: zips in, a folder out).

Class names are mapped by name (the master's classes are the union in first-seen order),
a frame of the same video that two datasets both hold is kept once (the first dataset
given wins), and each frame keeps its split (train / val / test).
"""

from __future__ import annotations

import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Source:
    """One dataset's YOLO zip; `video_id` makes frame files unique across datasets."""

    dataset_id: str
    video_id: str
    zip_path: str


def _names(data: dict) -> list[str]:
    names = data.get("names") or {}
    if isinstance(names, list):
        return [str(n) for n in names]
    return [str(names[k]) for k in sorted(names, key=int)]


def merge(sources: list[Source], out_dir: str) -> dict:
    """Write `<out_dir>/{images,labels}/{split}/<video>_<frame>.{jpg,txt}` and `data.yaml`.
    Returns `{"classes", "counts": {split: n}, "duplicates", "objects": {class: n}}`."""
    out = Path(out_dir)
    classes: list[str] = []
    seen: set[str] = set()
    counts: Counter[str] = Counter()
    objects: Counter[str] = Counter()
    duplicates = 0
    for source in sources:
        with zipfile.ZipFile(source.zip_path) as zf:
            data = yaml.safe_load(zf.read("data.yaml"))
            names = _names(data)
            for name in names:
                if name not in classes:
                    classes.append(name)
            remap = {i: classes.index(name) for i, name in enumerate(names)}
            for member in sorted(zf.namelist()):
                parts = member.split("/")
                if len(parts) != 3 or parts[0] != "images" or parts[1] not in SPLITS:
                    continue
                split, file_name = parts[1], parts[2]
                stem = file_name.rsplit(".", 1)[0]
                key = f"{source.video_id}_{stem}"
                if key in seen:
                    duplicates += 1
                    continue
                seen.add(key)
                label_name = f"labels/{split}/{stem}.txt"
                lines = []
                if label_name in zf.namelist():
                    for line in zf.read(label_name).decode().splitlines():
                        fields = line.split()
                        if len(fields) == 5:
                            new = remap[int(fields[0])]
                            lines.append(" ".join([str(new), *fields[1:]]))
                            objects[classes[new]] += 1
                (out / "images" / split).mkdir(parents=True, exist_ok=True)
                (out / "labels" / split).mkdir(parents=True, exist_ok=True)
                (out / "images" / split / f"{key}.jpg").write_bytes(zf.read(member))
                (out / "labels" / split / f"{key}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
                counts[split] += 1
    if not counts["train"]:
        raise ValueError("The chosen datasets have no training frames.")
    val = "val" if counts["val"] else "train"
    document = {"train": "images/train", "val": f"images/{val}", "nc": len(classes),
                "names": {i: name for i, name in enumerate(classes)}}
    if counts["test"]:
        document["test"] = "images/test"
    (out / "data.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return {"classes": classes, "counts": {s: counts[s] for s in SPLITS}, "duplicates": duplicates,
            "objects": dict(objects), "val_split": val}


def common_classes(model_classes: list[str], master_classes: list[str]) -> list[str]:
    """The master's classes the model also has (names compared case-insensitively), master order."""
    known = {n.casefold() for n in model_classes}
    return [n for n in master_classes if n.casefold() in known]


def for_model(master_dir: str, split: str, model_classes: list[str], out_dir: str) -> str:
    """A view of one split of a master dataset labelled in the model's class ids (by name), for
    `model.val`: images are symlinked, labels of classes the model lacks are dropped. Returns
    the view's data.yaml (the master's own when the classes already line up)."""
    master = Path(master_dir)
    data = yaml.safe_load((master / "data.yaml").read_text())
    names = _names(data)
    if [n.casefold() for n in names] == [n.casefold() for n in model_classes]:
        return str(master / "data.yaml")
    index = {n.casefold(): i for i, n in enumerate(model_classes)}
    remap = {i: index[n.casefold()] for i, n in enumerate(names) if n.casefold() in index}
    out = Path(out_dir)
    (out / "images" / split).mkdir(parents=True, exist_ok=True)
    (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    for image in sorted((master / "images" / split).iterdir()):
        (out / "images" / split / image.name).symlink_to(image.resolve())
        label = master / "labels" / split / f"{image.stem}.txt"
        lines = []
        if label.exists():
            for line in label.read_text().splitlines():
                fields = line.split()
                if len(fields) == 5 and int(fields[0]) in remap:
                    lines.append(" ".join([str(remap[int(fields[0])]), *fields[1:]]))
        (out / "labels" / split / f"{image.stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    document = {"path": str(out.resolve()), "train": f"images/{split}", "val": f"images/{split}",
                "nc": len(model_classes), "names": dict(enumerate(model_classes))}
    (out / "data.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return str(out / "data.yaml")
