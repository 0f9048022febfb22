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
attributes, declared on every label in `meta`. The dataset's own attributes (docs/attributes.md)
are declared on their label (`cvat_attributes`) and written on every box of that label with the
track's value on that frame; a `multi` attribute becomes one checkbox per value, named
`<attribute>:<value>` (CVAT has no several-of kind).
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from src.vision.attributes import AttributeSpec
from src.vision.formats.model import SOURCES, ExportSpec, LabeledFrame, frame_step

MULTI_SEPARATOR = ":"  # a multi attribute's checkbox per value: "action:walk"


def _attribute_spec(labels_attributes: ET.Element, name: str, input_type: str, default: str, values: str,
                    mutable: bool = True) -> None:
    attr = ET.SubElement(labels_attributes, "attribute")
    for tag, value in [("name", name), ("mutable", str(bool(mutable))), ("input_type", input_type),
                       ("default_value", default), ("values", values)]:
        ET.SubElement(attr, tag).text = value


def cvat_text(value) -> str:
    """A value as CVAT writes it: true / false, numbers without a needless .0, text as is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cvat_attributes(spec: AttributeSpec) -> list[dict]:
    """CVAT's attribute specs (`name`, `mutable`, `input_type`, `default_value`, `values` as a
    list) of one attribute: one, or one checkbox per value of a multi attribute."""
    default = spec.default_value()
    if spec.kind == "multi":
        return [{"name": f"{spec.name}{MULTI_SEPARATOR}{v}", "mutable": spec.mutable, "input_type": "checkbox",
                 "default_value": cvat_text(v in default), "values": ["false", "true"]} for v in spec.values]
    if spec.kind == "select":
        values = [str(v) for v in spec.values]
    elif spec.kind == "checkbox":
        values = ["false", "true"]
    elif spec.kind == "number":
        low, high, step = (list(spec.values) + [1])[:3] if spec.values else (0, 1000000, 1)
        values = [cvat_text(low), cvat_text(high), cvat_text(step)]
    else:
        values = []
    return [{"name": spec.name, "mutable": spec.mutable, "input_type": spec.kind, "default_value": cvat_text(default),
             "values": values}]


def cvat_values(spec: AttributeSpec, value) -> dict[str, str]:
    """`{CVAT attribute name: text}` of one attribute's value on a box."""
    if spec.kind == "multi":
        return {f"{spec.name}{MULTI_SEPARATOR}{v}": cvat_text(v in value) for v in spec.values}
    return {spec.name: cvat_text(value)}


def from_cvat_values(specs: list[AttributeSpec], class_name: str, values: dict[str, str]) -> dict:
    """The inverse of `cvat_values` over a box's CVAT attributes (others are ignored); values
    that do not parse are left out."""
    out = {}
    for spec in (s for s in specs if s.class_name == class_name):
        if spec.kind == "multi":
            names = {f"{spec.name}{MULTI_SEPARATOR}{v}": v for v in spec.values}
            if any(n in values for n in names):
                out[spec.name] = [v for n, v in names.items() if str(values.get(n, "")).lower() == "true"]
            continue
        if spec.name not in values:
            continue
        raw = values[spec.name]
        if spec.kind == "checkbox":
            out[spec.name] = str(raw).lower() == "true"
        elif spec.kind == "number":
            try:
                number = float(raw)
            except (TypeError, ValueError):
                continue
            out[spec.name] = int(number) if number.is_integer() else number
        elif spec.kind == "select":
            if raw in spec.values:
                out[spec.name] = raw
        else:
            out[spec.name] = str(raw)
    return out


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
        for attribute in (a for a in spec.attributes if a.class_name == name):
            for item in cvat_attributes(attribute):
                separator = ";" if item["input_type"] == "number" else "\n"
                _attribute_spec(attributes, item["name"], item["input_type"], item["default_value"],
                                separator.join(item["values"]), mutable=item["mutable"])
    size_el = ET.SubElement(task, "original_size")
    ET.SubElement(size_el, "width").text = str(spec.width)
    ET.SubElement(size_el, "height").text = str(spec.height)
    ET.SubElement(meta, "source").text = spec.video_name


def _box(parent: ET.Element, box, obj=None, specs: tuple[AttributeSpec, ...] = (), **attrs: str) -> ET.Element:
    x1, y1, x2, y2 = box
    el = ET.SubElement(parent, "box", **attrs, occluded="0", xtl=f"{x1:.2f}", ytl=f"{y1:.2f}", xbr=f"{x2:.2f}",
                       ybr=f"{y2:.2f}", z_order="0")
    if obj is not None:
        ET.SubElement(el, "attribute", name="source").text = obj.source
        ET.SubElement(el, "attribute", name="confidence").text = f"{obj.confidence:.4f}"
        by_name = {a.name: a for a in specs}
        for name, value in (obj.attributes or {}).items():
            if name in by_name:
                for cvat_name, text in cvat_values(by_name[name], value).items():
                    ET.SubElement(el, "attribute", name=cvat_name).text = text
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
        label = spec.classes[items[0][1].class_id]
        track = ET.SubElement(root, "track", id=str(track_id), label=label, source="semi-auto")
        specs = tuple(a for a in spec.attributes if a.class_name == label)
        for n, (f, o) in enumerate(items):
            _box(track, o.box, o, specs, frame=str(f.frame), outside="0", keyframe="1")
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
            label = spec.classes[o.class_id]
            box = _box(image, o.box, o, tuple(a for a in spec.attributes if a.class_name == label), label=label,
                       source="semi-auto")
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
