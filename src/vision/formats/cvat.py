"""CVAT for video 1.1 XML: one <track> per object with its boxes on the delivered frames
(keyframe="1" on keyframes and reviewed frames) and an outside="1" box when it leaves."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from src.vision.formats.model import ExportSpec, LabeledFrame


def cvat_document(spec: ExportSpec, frames: list[LabeledFrame]) -> ET.ElementTree:
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    meta = ET.SubElement(root, "meta")
    task = ET.SubElement(meta, "task")
    for tag, value in [("id", spec.dataset_id), ("name", spec.dataset_name), ("size", spec.n_frames),
                       ("mode", "interpolation"), ("overlap", 0), ("start_frame", 0),
                       ("stop_frame", spec.n_frames - 1), ("frame_filter", "")]:
        ET.SubElement(task, tag).text = str(value)
    labels = ET.SubElement(task, "labels")
    for i, name in enumerate(spec.classes):
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "color").text = spec.colors[i] if i < len(spec.colors) else "#ff0000"
        ET.SubElement(label, "type").text = "rectangle"
        ET.SubElement(label, "attributes")
    size = ET.SubElement(task, "original_size")
    ET.SubElement(size, "width").text = str(spec.width)
    ET.SubElement(size, "height").text = str(spec.height)
    ET.SubElement(meta, "source").text = spec.video_name

    tracks: dict[int, list] = {}
    for f in frames:
        for o in f.objects:
            tracks.setdefault(o.track_id, []).append((f, o))
    delivered = [f.frame for f in frames]
    for xml_id, (track_id, items) in enumerate(sorted(tracks.items())):
        label = spec.classes[items[0][1].class_id]
        track = ET.SubElement(root, "track", id=str(xml_id), label=label, source="manual")
        track.set("data_forge_track_id", str(track_id))
        present = {f.frame for f, _ in items}
        for f, o in items:
            _box(track, f.frame, o.box, outside=0, keyframe=int(f.source != "propagated"))
            later = [d for d in delivered if d > f.frame]
            if later and later[0] not in present:  # the object is gone on the next delivered frame
                _box(track, later[0], o.box, outside=1, keyframe=1)
    return ET.ElementTree(root)


def _box(track: ET.Element, frame: int, box, *, outside: int, keyframe: int) -> None:
    x1, y1, x2, y2 = box
    ET.SubElement(track, "box", frame=str(frame), outside=str(outside), occluded="0", keyframe=str(keyframe),
                  xtl=f"{x1:.2f}", ytl=f"{y1:.2f}", xbr=f"{x2:.2f}", ybr=f"{y2:.2f}", z_order="0")


def write_cvat(root: Path, spec: ExportSpec, frames: list[LabeledFrame], images: Path) -> list[tuple[Path, str]]:
    root.mkdir(parents=True, exist_ok=True)
    tree = cvat_document(spec, frames)
    ET.indent(tree)
    tree.write(root / "annotations.xml", encoding="utf-8", xml_declaration=True)
    return [(images / f.file_name, f"images/{f.file_name}") for f in frames]
