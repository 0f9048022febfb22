"""CVAT 1.1 XML in its two flavours, both beside `images/frame_NNNNNN.jpg` (NNNNNN: the
0-based frame of the video).

- **CVAT for video** (`write_cvat`): one `<track id=TRACK_ID>` per object. Every delivered box
  is a keyframe (`keyframe="1"`): CVAT keeps only the keyframes of a track on import and
  interpolates between them, and the engine's boxes are not linear in time. A box with
  `outside="1"` on the next frame of the sequence closes each visible run (the object left, is
  gone, or the track ends before the video does). `frame` is the video frame (CVAT's absolute
  frame number); `meta/task` has `start_frame`, `stop_frame` and `frame_filter` (`step=N`
  when every Nth frame is delivered), so a CVAT task made from the video with that step maps
  each box onto its frame. The `<image>` elements (empty, one per frame of the sequence) name
  each frame's JPEG, so tools that read images by name (datumaro) find them all.
- **CVAT for images** (`write_cvat_images`): one `<image id=i name=frame_NNNNNN.jpg>` per
  delivered frame (i: its 0-based position, as in a CVAT task made from these images) with
  its `<box>`es; the track id is the box's `track_id` attribute.

Each box carries `source` (seed / propagated / reviewed / detector) and `confidence` as CVAT
attributes, declared on every label in `meta`.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from src.vision.formats.model import SOURCES, ExportSpec, LabeledFrame, frame_step


def _attribute_spec(labels_attributes: ET.Element, name: str, input_type: str, default: str, values: str) -> None:
    attr = ET.SubElement(labels_attributes, "attribute")
    for tag, value in [("name", name), ("mutable", "True"), ("input_type", input_type),
                       ("default_value", default), ("values", values)]:
        ET.SubElement(attr, tag).text = value


def _meta(root: ET.Element, spec: ExportSpec, *, mode: str, size: int, start: int, stop: int, frame_filter: str,
          track_id_attribute: bool) -> None:
    meta = ET.SubElement(root, "meta")
    task = ET.SubElement(meta, "task")
    for tag, value in [("id", spec.dataset_id), ("name", spec.dataset_name), ("size", size), ("mode", mode),
                       ("overlap", 0), ("bugtracker", ""), ("flipped", "False"), ("start_frame", start),
                       ("stop_frame", stop), ("frame_filter", frame_filter)]:
        ET.SubElement(task, tag).text = str(value)
    labels = ET.SubElement(task, "labels")
    for i, name in enumerate(spec.classes):
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "color").text = spec.colors[i] if i < len(spec.colors) else "#ff0000"
        ET.SubElement(label, "type").text = "rectangle"
        attributes = ET.SubElement(label, "attributes")
        _attribute_spec(attributes, "source", "select", "propagated", "\n".join(SOURCES))
        _attribute_spec(attributes, "confidence", "text", "", "")
        if track_id_attribute:
            _attribute_spec(attributes, "track_id", "number", "0", "0;2147483647;1")
    size_el = ET.SubElement(task, "original_size")
    ET.SubElement(size_el, "width").text = str(spec.width)
    ET.SubElement(size_el, "height").text = str(spec.height)
    ET.SubElement(meta, "source").text = spec.video_name


def _box(parent: ET.Element, box, obj=None, **attrs: str) -> ET.Element:
    x1, y1, x2, y2 = box
    el = ET.SubElement(parent, "box", **attrs, occluded="0", xtl=f"{x1:.2f}", ytl=f"{y1:.2f}", xbr=f"{x2:.2f}",
                       ybr=f"{y2:.2f}", z_order="0")
    if obj is not None:
        ET.SubElement(el, "attribute", name="source").text = obj.source
        ET.SubElement(el, "attribute", name="confidence").text = f"{obj.confidence:.4f}"
    return el


def _image(root: ET.Element, image_id: int, f: LabeledFrame, spec: ExportSpec) -> ET.Element:
    return ET.SubElement(root, "image", id=str(image_id), name=f.file_name, width=str(spec.width), height=str(spec.height))


def cvat_video_document(spec: ExportSpec, sequence: list[LabeledFrame]) -> ET.ElementTree:
    """`sequence`: every delivered frame in time order (frames without objects too: an object's
    absence is written on them)."""
    frames = [f.frame for f in sequence]
    step = frame_step(frames)
    start, stop = (frames[0], frames[-1]) if frames else (0, max(0, spec.n_frames - 1))
    size = len(frames) if step is not None else stop - start + 1
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    _meta(root, spec, mode="interpolation", size=size, start=start, stop=stop,
          frame_filter=f"step={step}" if step and step > 1 else "", track_id_attribute=False)
    for f in sequence:
        _image(root, f.frame, f, spec)
    runs: dict[int, list[tuple[LabeledFrame, object]]] = {}
    for f in sequence:
        for o in f.objects:
            runs.setdefault(o.track_id, []).append((f, o))
    position = {f.frame: i for i, f in enumerate(sequence)}
    for track_id, items in sorted(runs.items()):
        track = ET.SubElement(root, "track", id=str(track_id), label=spec.classes[items[0][1].class_id],
                              source="semi-auto")
        for n, (f, o) in enumerate(items):
            _box(track, o.box, o, frame=str(f.frame), outside="0", keyframe="1")
            following = position[f.frame] + 1
            shown_next = n + 1 < len(items) and position[items[n + 1][0].frame] == following
            if following < len(sequence) and not shown_next:  # absent on the next frame: close the run
                _box(track, o.box, frame=str(sequence[following].frame), outside="1", keyframe="1")
    return ET.ElementTree(root)


def cvat_images_document(spec: ExportSpec, frames: list[LabeledFrame]) -> ET.ElementTree:
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    _meta(root, spec, mode="annotation", size=len(frames), start=0, stop=max(0, len(frames) - 1), frame_filter="",
          track_id_attribute=True)
    for i, f in enumerate(frames):
        image = _image(root, i, f, spec)
        for o in f.objects:
            box = _box(image, o.box, o, label=spec.classes[o.class_id], source="semi-auto")
            ET.SubElement(box, "attribute", name="track_id").text = str(o.track_id)
    return ET.ElementTree(root)


def _write(root: Path, tree: ET.ElementTree) -> None:
    root.mkdir(parents=True, exist_ok=True)
    ET.indent(tree)
    tree.write(root / "annotations.xml", encoding="utf-8", xml_declaration=True)


def write_cvat(root: Path, spec: ExportSpec, sequence: list[LabeledFrame], images: Path) -> list[tuple[Path, str]]:
    """CVAT for video; returns (source image, archive name) pairs to add."""
    _write(root, cvat_video_document(spec, sequence))
    return [(images / f.file_name, f"images/{f.file_name}") for f in sequence]


def write_cvat_images(root: Path, spec: ExportSpec, frames: list[LabeledFrame], images: Path) -> list[tuple[Path, str]]:
    _write(root, cvat_images_document(spec, frames))
    return [(images / f.file_name, f"images/{f.file_name}") for f in frames]
