"""Attributes on tracks carried to every propagated box and written by each export: AVA (one row
per action, read by the AVA reference reader's parsing), CVAT for video and for images (read by
datumaro), COCO `attributes`, and YOLO's attributes.json. Same synthetic scene as test_formats."""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace
from xml.etree import ElementTree as ET

import pytest

from src.datasets.pipeline import run_build
from src.vision.attributes import AttributeSpec, InvalidAttribute, TrackValues, check_values, clean_spec
from src.vision.formats.model import ExportSpec
from tests.vision.test_formats import ALL, CLASSES, FPS, H, N, REVIEWED, W, read_ava_csv, read_ava_labelmap, scene  # noqa: F401

ACTIONS = ("stand", "walk", "sit", "talk")
SPECS = (
    AttributeSpec("person", "action", "multi", ACTIONS, None, True),
    AttributeSpec("car", "colour", "select", ("red", "blue"), "red", False),
    AttributeSpec("person", "occluded_by_crowd", "checkbox", (), None, True),
)
# track 1 walks, then stands from the reviewed frame on; track 3 walks and talks throughout;
# track 2 (the car) is blue; the checkbox is set once on frame 30 for track 1
KEYFRAMES = {
    0: {1: {"action": ["walk"]}, 2: {"colour": "blue"}, 3: {"action": ["walk", "talk"]}},
    REVIEWED: {1: {"action": ["stand"], "occluded_by_crowd": True}, 3: {}},
}


def expected_values(track_id: int, frame: int) -> dict:
    if track_id == 1:
        return {"action": ["walk"] if frame < REVIEWED else ["stand"], "occluded_by_crowd": frame >= REVIEWED}
    if track_id == 3:
        return {"action": ["walk", "talk"], "occluded_by_crowd": False}
    return {"colour": "blue"}


def test_track_values_hold_from_keyframe_to_the_next_change():
    specs = [AttributeSpec("person", "action", "select", ACTIONS, None, True),
             AttributeSpec("person", "team", "select", ("a", "b"), None, False),
             AttributeSpec("person", "note", "text", (), "none", True)]
    values = TrackValues(specs, [(20, {"action": "sit"}), (10, {"action": "walk", "team": "b"}), (15, {}),
                                 (40, {"note": "x"})])
    assert values.at(0) == {"action": "walk", "team": "b", "note": "none"}  # before the first: the first value
    assert values.at(19)["action"] == "walk" and values.at(15)["action"] == "walk"  # {} changes nothing
    assert values.at(20)["action"] == values.at(99)["action"] == "sit"
    assert values.at(39)["note"] == "none" and values.at(40)["note"] == "x"
    assert {values.at(f)["team"] for f in range(100)} == {"b"}  # immutable: one value per track


def test_values_are_checked():
    assert check_values(SPECS, "person", {"action": ["talk", "stand"]}) == {"action": ["stand", "talk"]}
    for values, message in [({"action": ["fly"]}, "'fly'"), ({"colour": "red"}, "no attribute 'colour'"),
                            ({"occluded_by_crowd": "yes"}, "true or false")]:
        with pytest.raises(InvalidAttribute, match=message):
            check_values(SPECS, "person", values)
    with pytest.raises(InvalidAttribute, match="exports already use"):
        clean_spec("person", "source", "text", [], None, True)
    assert clean_spec("box", "size", "number", [0, 10], 3, True).default == 3


@pytest.fixture(scope="module")
def exported(scene, tmp_path_factory):  # noqa: F811
    video, result = scene
    tmp = tmp_path_factory.mktemp("attributes")
    delivered = list(range(0, N, 2))
    split = {"train": 0.8, "valid": 0.2, "test": 0.0, "seed": 1}
    spec = ExportSpec(dataset_id="ds-1", dataset_name="Street scene", video_id="vid-1", video_name="scene.mp4",
                      width=W, height=H, fps=FPS, n_frames=N, classes=CLASSES, colors=["#ff0000", "#00ff00"],
                      formats=ALL, sampling={"mode": "every_n", "every_n": 2}, split=split,
                      reviewed_frames=frozenset({REVIEWED}), attributes=SPECS, keyframe_attributes=KEYFRAMES)
    built = run_build(str(video), result, spec, delivered, split, True, str(tmp / "out"), str(tmp / "progress.json"))
    dirs = {}
    for fmt, path in built.zips.items():
        dirs[fmt] = tmp / fmt
        with zipfile.ZipFile(path) as zf:
            zf.extractall(dirs[fmt])
    manifest = json.loads((tmp / "out" / "manifest.json").read_text())
    return {"dirs": dirs, "manifest": manifest, "result": result, "delivered": delivered, "spec": spec,
            "video": video}


def test_every_propagated_box_carries_its_tracks_values(exported):
    boxes = [(f["frame"], o) for f in exported["manifest"]["frames"] for o in f["objects"]]
    assert {o["source"] for _, o in boxes} >= {"seed", "propagated", "detector"}
    for frame, o in boxes:
        assert o["attributes"] == expected_values(o["track_id"], frame), (frame, o["track_id"])
    assert [a["name"] for a in exported["manifest"]["attributes"]] == ["action", "colour", "occluded_by_crowd"]


def test_ava_has_one_row_per_action_and_the_reference_reader_parses_it(exported):
    root = exported["dirs"]["ava"]
    with open(root / "label_map.pbtxt") as f:
        labelmap, class_ids = read_ava_labelmap(f)
    assert labelmap == [{"id": i + 1, "name": a} for i, a in enumerate(ACTIONS)]
    with open(root / "annotations.csv") as f:
        boxes, labels, person_ids = read_ava_csv(f, class_ids)
    result = exported["result"]
    for second in range(int(N / FPS)):
        frame = int(second * FPS + 0.5)
        key = "vid-1,%04d" % second
        want = sorted(
            (t.track_id, ACTIONS.index(a) + 1) for t in result.tracks if t.present[frame] and t.class_name == "person"
            for a in expected_values(t.track_id, frame)["action"])
        got = sorted(zip((int(p) for p in person_ids.get(key, [])), labels.get(key, [])))
        assert got == want, second
        for (y1, x1, y2, x2), pid in zip(boxes.get(key, []), person_ids.get(key, [])):
            bx = next(t for t in result.tracks if t.track_id == int(pid)).boxes[frame]
            assert [x1, y1, x2, y2] == pytest.approx([bx[0] / W, bx[1] / H, bx[2] / W, bx[3] / H], abs=6e-4)
    # track 3 does two things at once: two rows with the same box
    assert labels["vid-1,0000"].count(2) == 2 and 4 in labels["vid-1,0000"]
    provenance = json.loads((root / "provenance.json").read_text())["boxes"]
    assert len(provenance) == len((root / "annotations.csv").read_text().splitlines())


def test_ava_action_attribute_can_be_chosen_and_a_select_gives_one_row(exported, tmp_path):
    from src.vision.formats.ava import write_ava

    spec = replace(exported["spec"], ava_action="colour")
    write_ava(tmp_path, spec, exported["result"])
    with open(tmp_path / "label_map.pbtxt") as f:
        assert [e["name"] for e in read_ava_labelmap(f)[0]] == ["red", "blue"]
    with open(tmp_path / "annotations.csv") as f:
        _, labels, person_ids = read_ava_csv(f)
    assert {int(p) for ps in person_ids.values() for p in ps} == {2}
    assert {label for ls in labels.values() for label in ls} == {2}


def test_cvat_declares_the_attributes_and_datumaro_reads_them(exported):
    dm = pytest.importorskip("datumaro")
    from datumaro.components.annotation import AnnotationType

    root = ET.parse(exported["dirs"]["cvat"] / "annotations.xml").getroot()
    person = next(lb for lb in root.iter("label") if lb.findtext("name") == "person")
    declared = {a.findtext("name"): a for a in person.find("attributes")}
    assert declared["action:walk"].findtext("input_type") == "checkbox"
    assert declared["action:walk"].findtext("mutable") == "True"
    car = next(lb for lb in root.iter("label") if lb.findtext("name") == "car")
    colour = next(a for a in car.find("attributes") if a.findtext("name") == "colour")
    assert (colour.findtext("input_type"), colour.findtext("mutable"), colour.findtext("default_value"),
            colour.findtext("values")) == ("select", "False", "red", "red\nblue")
    for fmt in ("cvat", "cvat_images"):
        dataset = dm.Dataset.import_from(str(exported["dirs"][fmt]), "cvat")
        labels = dataset.categories()[AnnotationType.label]
        exported_frames = [f["frame"] for f in exported["manifest"]["frames"]]
        seen = 0
        for index, item in enumerate(dataset):
            frame = item.attributes["frame"] if fmt == "cvat" else exported_frames[index]
            for ann in item.annotations:
                if ann.attributes.get("outside"):
                    continue
                seen += 1
                want = expected_values(int(ann.attributes["track_id"]), frame)
                if labels.items[ann.label].name == "person":
                    assert [a for a in ACTIONS if ann.attributes[f"action:{a}"] is True] == want["action"]
                    assert ann.attributes["occluded_by_crowd"] is want["occluded_by_crowd"]
                else:
                    assert ann.attributes["colour"] == "blue"
        assert seen == sum(len(f["objects"]) for f in exported["manifest"]["frames"])


def test_coco_and_yolo_carry_the_values(exported):
    coco = json.loads((exported["dirs"]["coco"] / "annotations.coco.json").read_text())
    frames = {image["id"]: image["frame_index"] for image in coco["images"]}
    assert coco["annotations"]
    for ann in coco["annotations"]:
        values = expected_values(ann["track_id"], frames[ann["image_id"]])
        assert {k: ann["attributes"][k] for k in values} == values
        assert ann["attributes"]["source"] in ("seed", "propagated", "reviewed", "detector")
    sidecar = json.loads((exported["dirs"]["yolo"] / "attributes.json").read_text())
    assert [a["name"] for a in sidecar["attributes"]] == ["action", "colour", "occluded_by_crowd"]
    for box in sidecar["boxes"]:
        assert box["values"] == expected_values(box["track_id"], box["frame"])
        lines = (exported["dirs"]["yolo"] / box["file"]).read_text().splitlines()
        assert int(lines[box["line"]].split()[0]) == CLASSES.index("person" if box["track_id"] != 2 else "car")
    assert len(sidecar["boxes"]) == sum(len(f["objects"]) for f in exported["manifest"]["frames"])
