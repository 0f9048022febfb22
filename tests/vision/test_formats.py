"""Every export format read back by the tool people load it with: datumaro (CVAT for video and
for images), the AVA reference reader's parsing, py-motmetrics (MOT), ultralytics (YOLO and
its track variant), pycocotools (COCO); on every frame and on every-5th-frame sampling.

The input is a small synthetic video with hand-made tracks that have what real ones have:
seeds, propagated runs, a detector-filled run, a reviewed frame, an object that leaves and
comes back, one that ends before the video, and frames where nothing is present."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest

from src.datasets.pipeline import run_build
from src.vision.formats.model import ExportSpec
from src.vision.synthetic import make_video
from src.vision.types import SOURCE_DETECTOR, SOURCE_KEYFRAME, SOURCE_PROPAGATED, PropagationResult, Track, VideoInfo

W, H, N, FPS = 192, 144, 60, 10.0
CLASSES = ["person", "car"]
ALL = ("yolo", "yolo_track", "coco", "cvat", "cvat_images", "ava", "mot")
DETECTOR_RUN = range(12, 17)  # track 1: boxes a detector filled
REVIEWED = 30
EMPTY = range(50, 55)  # no object at all


def _tracks(gt: dict[int, np.ndarray]) -> list[Track]:
    tracks = []
    for tid, name in [(1, "person"), (2, "car"), (3, "person")]:
        t = Track.empty(tid, name, N)
        present = np.isfinite(gt[tid]).all(axis=1)
        if tid == 2:
            present[25:35] = False  # leaves and comes back
        if tid == 3:
            present[45:] = False  # ends before the video does
        present[list(EMPTY)] = False
        t.boxes[present] = gt[tid][present]
        t.source[present] = SOURCE_PROPAGATED
        t.confidence[present] = np.linspace(0.9, 0.5, N)[present]
        for f in (0, REVIEWED):
            if present[f]:
                t.source[f], t.confidence[f] = SOURCE_KEYFRAME, 1.0
        if tid == 1:
            t.source[list(DETECTOR_RUN)] = SOURCE_DETECTOR
            t.confidence[list(DETECTOR_RUN)] = 0.55
        tracks.append(t)
    return tracks


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    path = tmp_path_factory.mktemp("formats") / "scene.mp4"
    gt = make_video(path, width=W, height=H, n_frames=N, n_objects=3, fps=FPS, seed=3, object_size=(24, 48))
    assert all(np.isfinite(gt[t]).all() for t in gt), "the synthetic objects stay in the picture"
    info = VideoInfo(frames=N, fps=FPS, width=W, height=H, codec="mp4v", container="mp4", duration_s=N / FPS)
    return path, PropagationResult(info, _tracks(gt))


def _export(scene, tmp: Path, *, every_n: int, keep_empty: bool, split: dict, delivered: list[int] | None = None) -> dict:
    video, result = scene
    delivered = delivered or list(range(0, N, every_n))
    spec = ExportSpec(dataset_id="ds-1", dataset_name="Street scene", video_id="vid-1", video_name="scene.mp4",
                      width=W, height=H, fps=FPS, n_frames=N, classes=CLASSES, colors=["#ff0000", "#00ff00"],
                      formats=ALL, sampling={"mode": "every_n" if every_n > 1 else "all", "every_n": every_n},
                      split=split, reviewed_frames=frozenset({REVIEWED}))
    built = run_build(str(video), result, spec, delivered, split, keep_empty, str(tmp / "out"), str(tmp / "progress.json"))
    dirs = {}
    for fmt, zpath in built.zips.items():
        dirs[fmt] = tmp / fmt
        with zipfile.ZipFile(zpath) as zf:
            zf.extractall(dirs[fmt])
    manifest = json.loads((tmp / "out" / "manifest.json").read_text())
    return {"dirs": dirs, "manifest": manifest, "delivered": delivered, "result": result, "built": built}


CASES = {
    "every_frame": dict(every_n=1, keep_empty=True, split={"train": 0.8, "valid": 0.2, "test": 0.0, "seed": 1}),
    "every_5th": dict(every_n=5, keep_empty=False, split={"train": 0.5, "valid": 0.25, "test": 0.25, "seed": 2}),
    # what near-duplicate removal (or every Nth restarted at a scene cut) delivers: uneven gaps
    "uneven": dict(every_n=1, keep_empty=True, split={"train": 0.7, "valid": 0.3, "test": 0.0, "seed": 3},
                   delivered=[0, 1, 2, 5, 9, 14, 20, 27, 30, 35, 44, 50, 54, 59]),
}


def _step(delivered: list[int]) -> int | None:
    gaps = {b - a for a, b in zip(delivered, delivered[1:])}
    return gaps.pop() if len(gaps) == 1 else None


@pytest.fixture(scope="module", params=list(CASES))
def export(request, scene, tmp_path_factory):
    out = _export(scene, tmp_path_factory.mktemp(request.param), **CASES[request.param])
    out["case"] = request.param
    return out


def _expected(export) -> dict[int, dict[int, dict]]:
    """{frame: {track_id: object}} as the manifest lists the exported frames."""
    return {f["frame"]: {o["track_id"]: o for o in f["objects"]} for f in export["manifest"]["frames"]}


def _truth_sources(result: PropagationResult, frame: int, track_id: int) -> str:
    if frame == REVIEWED:
        return "reviewed"
    t = next(t for t in result.tracks if t.track_id == track_id)
    return {SOURCE_KEYFRAME: "seed", SOURCE_DETECTOR: "detector", SOURCE_PROPAGATED: "propagated"}[int(t.source[frame])]


def test_manifest_objects_say_where_each_box_came_from(export):
    expected = _expected(export)
    assert expected, "frames were exported"
    sources = set()
    for frame, objects in expected.items():
        for tid, o in objects.items():
            assert o["source"] == _truth_sources(export["result"], frame, tid)
            sources.add(o["source"])
    assert {"seed", "propagated", "detector"} <= sources
    if CASES[export["case"]]["keep_empty"]:
        assert set(EMPTY) & set(export["delivered"]) <= set(expected)  # negatives kept
    else:
        assert 50 not in expected  # keep_empty=False drops the empty sampled frame
    if REVIEWED in export["delivered"]:
        assert "reviewed" in sources


# --- CVAT for video, read by datumaro -------------------------------------------------------

def _datumaro(path: Path):
    dm = pytest.importorskip("datumaro")
    return dm.Dataset.import_from(str(path), "cvat")


def test_cvat_video_every_box_is_a_keyframe_and_runs_close_with_outside(export):
    root = ET.parse(export["dirs"]["cvat"] / "annotations.xml").getroot()
    delivered = export["delivered"]
    task = root.find("meta/task")
    step = _step(delivered)
    assert task.findtext("mode") == "interpolation"
    assert task.findtext("frame_filter") == (f"step={step}" if step and step > 1 else "")
    assert int(task.findtext("start_frame")) == delivered[0] and int(task.findtext("stop_frame")) == delivered[-1]
    # a CVAT task made from the video with that frame filter has exactly these frames; uneven
    # gaps need a task over every frame from start to stop
    assert int(task.findtext("size")) == (len(delivered) if step else delivered[-1] - delivered[0] + 1)
    images = sorted(p.name for p in (export["dirs"]["cvat"] / "images").iterdir())
    assert images == [f"frame_{f:06d}.jpg" for f in delivered]  # the whole sequence, empty frames too
    result = export["result"]
    for track in root.findall("track"):
        tid = int(track.get("id"))
        truth = next(t for t in result.tracks if t.track_id == tid)
        boxes = track.findall("box")
        assert all(b.get("keyframe") == "1" for b in boxes)
        shown = [int(b.get("frame")) for b in boxes if b.get("outside") == "0"]
        assert shown == [f for f in delivered if truth.present[f]]
        outside = [int(b.get("frame")) for b in boxes if b.get("outside") == "1"]
        closes = [b for a, b in zip(delivered, delivered[1:]) if truth.present[a] and not truth.present[b]]
        assert outside == closes and closes, "each visible run ends with an outside box on the next frame"
        assert {int(b.get("frame")) for b in boxes} <= set(delivered)


def test_datumaro_imports_cvat_video_with_every_frame_box_and_track_id(export):
    dataset = _datumaro(export["dirs"]["cvat"])
    items = {item.attributes["frame"]: item for item in dataset}
    expected = _expected(export)
    assert set(expected) <= set(items)
    for frame, item in items.items():
        assert Path(item.media.path).is_file(), f"datumaro did not find the image of frame {frame}"
        assert item.media.data.shape[:2] == (H, W)
        shown = {a.attributes["track_id"]: a for a in item.annotations if not a.attributes.get("outside")}
        want = expected.get(frame, {})
        assert set(shown) == set(want)
        for tid, ann in shown.items():
            x1, y1, x2, y2 = want[tid]["box"]
            assert [ann.x, ann.y, ann.x + ann.w, ann.y + ann.h] == pytest.approx([x1, y1, x2, y2], abs=0.011)
            assert CLASSES[want[tid]["class_id"]] == dataset.categories()[_label_type()].items[ann.label].name
            assert ann.attributes["source"] == want[tid]["source"]
            assert float(ann.attributes["confidence"]) == pytest.approx(want[tid]["confidence"], abs=1e-4)
    n_boxes = sum(1 for item in dataset for a in item.annotations if not a.attributes.get("outside"))
    assert n_boxes == sum(len(v) for v in expected.values())


def _label_type():
    from datumaro.components.annotation import AnnotationType

    return AnnotationType.label


# --- CVAT for images, read by datumaro ------------------------------------------------------

def test_datumaro_imports_cvat_images_with_every_frame_box_and_track_id(export):
    root = ET.parse(export["dirs"]["cvat_images"] / "annotations.xml").getroot()
    exported = [f["frame"] for f in export["manifest"]["frames"]]
    assert [img.get("name") for img in root.findall("image")] == [f"frame_{f:06d}.jpg" for f in exported]
    assert [int(img.get("id")) for img in root.findall("image")] == list(range(len(exported)))
    dataset = _datumaro(export["dirs"]["cvat_images"])
    expected = _expected(export)
    assert len(dataset) == len(expected)
    labels = dataset.categories()[_label_type()]
    for item in dataset:
        frame = int(item.id.split("_")[1])
        assert Path(item.media.path).is_file() and item.media.data.shape[:2] == (H, W)
        got = {int(a.attributes["track_id"]): a for a in item.annotations}
        assert set(got) == set(expected[frame])
        for tid, ann in got.items():
            want = expected[frame][tid]
            assert [ann.x, ann.y, ann.x + ann.w, ann.y + ann.h] == pytest.approx(want["box"], abs=0.011)
            assert labels.items[ann.label].name == CLASSES[want["class_id"]]
            assert ann.attributes["source"] == want["source"]


# --- AVA: the reference reader's parsing ----------------------------------------------------

def read_ava_csv(csv_file, class_whitelist=None):
    """ActivityNet's ava/get_ava_performance.py `read_csv`, reimplemented line for line: rows of
    7 or 8 columns, `int(row[1])`, float corners, int action id, the 8th column as a float."""
    boxes, labels, scores = {}, {}, {}
    for row in csv.reader(csv_file):
        assert len(row) in [7, 8], "Wrong number of columns: " + str(row)
        video_id = row[0]
        timestamp = int(row[1])
        x1, y1, x2, y2 = [float(n) for n in row[2:6]]
        action_id = int(row[6])
        if class_whitelist and action_id not in class_whitelist:
            continue
        score = 1.0
        if len(row) == 8:
            score = float(row[7])
        image_key = "%s,%04d" % (video_id, timestamp)
        boxes.setdefault(image_key, []).append([y1, x1, y2, x2])
        labels.setdefault(image_key, []).append(action_id)
        scores.setdefault(image_key, []).append(score)
    return boxes, labels, scores


def read_ava_labelmap(labelmap_file):
    """The same file's `read_labelmap` (no protobuf dependency)."""
    labelmap, class_ids, name = [], set(), ""
    for line in labelmap_file:
        if line.startswith("  name:"):
            name = line.split('"')[1]
        elif line.startswith("  id:"):
            class_id = int(line.strip().split(" ")[-1])
            labelmap.append({"id": class_id, "name": name})
            class_ids.add(class_id)
    return labelmap, class_ids


def test_ava_csv_passes_the_reference_reader(export):
    root = export["dirs"]["ava"]
    with open(root / "label_map.pbtxt") as f:
        labelmap, class_ids = read_ava_labelmap(f)
    assert labelmap == [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}]
    with open(root / "annotations.csv") as f:
        boxes, labels, person_ids = read_ava_csv(f, class_ids)
    lines = (root / "annotations.csv").read_text().splitlines()
    assert not lines[0].startswith("video_id")  # no header
    result = export["result"]
    expected_keys = set()
    for second in range(int(N / FPS)):
        frame = int(second * FPS + 0.5)  # the frame nearest each whole second
        present = [t for t in result.tracks if t.present[frame]]
        if not present:
            continue
        key = "vid-1,%04d" % second
        expected_keys.add(key)
        assert sorted(int(p) for p in person_ids[key]) == sorted(t.track_id for t in present)
        for t, (y1, x1, y2, x2), action in zip(sorted(present, key=lambda t: t.track_id), boxes[key], labels[key]):
            bx = t.boxes[frame]
            assert [x1, y1, x2, y2] == pytest.approx([bx[0] / W, bx[1] / H, bx[2] / W, bx[3] / H], abs=6e-4)
            assert action == CLASSES.index(t.class_name) + 1
    assert set(boxes) == expected_keys
    for row in csv.reader(lines):
        assert all(len(v.split(".")[1]) == 3 for v in row[2:6]) and all(0 <= float(v) <= 1 for v in row[2:6])
    provenance = json.loads((root / "provenance.json").read_text())["boxes"]
    assert len(provenance) == len(lines) and provenance[0]["row"] == 0
    assert all(p["source"] == _truth_sources(result, p["frame"], p["track_id"]) for p in provenance)


# --- MOT Challenge, read by py-motmetrics ---------------------------------------------------

def test_mot_loads_in_motmetrics_with_idf1_one_against_itself(export):
    mm = pytest.importorskip("motmetrics")
    root = export["dirs"]["mot"]
    seqinfo = dict(line.split("=", 1) for line in (root / "seqinfo.ini").read_text().splitlines()[1:])
    delivered = export["delivered"]
    assert int(seqinfo["seqLength"]) == len(delivered) and seqinfo["imDir"] == "img1"
    rate = FPS / _step(delivered) if _step(delivered) else FPS * len(delivered) / N
    assert float(seqinfo["frameRate"]) == pytest.approx(rate, rel=1e-3)
    frame_map = (root / "frames.csv").read_text().splitlines()[1:]
    assert [line.split(",") for line in frame_map] == [[str(i + 1), str(f)] for i, f in enumerate(delivered)]
    assert sorted(p.name for p in (root / "img1").iterdir()) == [f"{i:06d}.jpg" for i in range(1, len(delivered) + 1)]
    gt = mm.io.loadtxt(str(root / "gt" / "gt.txt"), fmt="mot15-2D")
    frames = gt.index.get_level_values("FrameId")
    assert frames.min() >= 1 and frames.max() <= len(delivered)
    result = export["result"]
    assert len(gt) == sum(int(t.present[f]) for t in result.tracks for f in delivered)
    row = gt.loc[(1, 1)]  # MOT frame 1 is video frame delivered[0]; track 1 is there
    bx = result.tracks[0].boxes[delivered[0]]
    assert [row.X, row.Y, row.Width, row.Height] == pytest.approx([bx[0], bx[1], bx[2] - bx[0], bx[3] - bx[1]], abs=0.011)
    # the accumulator over motmetrics' own IoU (its iou_matrix calls np.asfarray, gone in NumPy 2)
    acc = mm.MOTAccumulator(auto_id=False)
    for frame_id, rows in gt.groupby(level="FrameId"):
        ids = rows.index.get_level_values("Id").to_numpy()
        xywh = rows[["X", "Y", "Width", "Height"]].to_numpy(float)
        dist = 1.0 - mm.distances.boxiou(xywh[:, None], xywh[None, :])
        acc.update(ids, ids, np.where(dist > 0.5, np.nan, dist), frameid=frame_id)
    summary = mm.metrics.create().compute(acc, metrics=["idf1", "mota", "num_switches"], name="self")
    assert summary["idf1"].iloc[0] == pytest.approx(1.0) and summary["mota"].iloc[0] == pytest.approx(1.0)
    assert summary["num_switches"].iloc[0] == 0


# --- YOLO and YOLO with track ids, read by ultralytics ---------------------------------------

@pytest.mark.parametrize("fmt", ["yolo", "yolo_track"])
def test_ultralytics_checks_and_loads_the_yolo_dataset(export, fmt):
    pytest.importorskip("ultralytics")
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    root = export["dirs"][fmt]
    info = check_det_dataset(str(root / "data.yaml"))
    assert info["nc"] == 2 and info["names"] == {0: "person", 1: "car"}
    expected = _expected(export)
    loaded = 0
    for split in ("train", "val", "test"):
        if not (root / "images" / split).is_dir():
            continue
        dataset = YOLODataset(img_path=str(root / "images" / split), data=info, task="detect", augment=False)
        for label in dataset.labels:
            frame = int(Path(label["im_file"]).stem.split("_")[1])
            objects = list(expected[frame].values())
            assert len(label["cls"]) == len(objects)
            assert [int(c) for c in label["cls"].ravel()] == [o["class_id"] for o in objects]
            x1, y1, x2, y2 = objects[0]["box"] if objects else (0, 0, 0, 0)
            if objects:
                assert label["bboxes"][0] == pytest.approx([(x1 + x2) / 2 / W, (y1 + y2) / 2 / H, (x2 - x1) / W, (y2 - y1) / H], abs=1e-5)
            if fmt == "yolo_track":
                tracks = (root / "tracks" / split / (Path(label["im_file"]).stem + ".txt")).read_text().split()
                assert [int(t) for t in tracks] == [o["track_id"] for o in objects]
            loaded += 1
    assert loaded == len(expected)
    assert (root / "tracks").is_dir() == (fmt == "yolo_track")
    provenance = json.loads((root / "provenance.json").read_text())["boxes"]
    assert len(provenance) == sum(len(v) for v in expected.values())
    for p in provenance:
        line = (root / p["file"]).read_text().splitlines()[p["line"]]
        assert int(line.split()[0]) == expected[p["frame"]][p["track_id"]]["class_id"]
        assert p["source"] == expected[p["frame"]][p["track_id"]]["source"]


# --- COCO, read by pycocotools --------------------------------------------------------------

def test_pycocotools_loads_coco_and_an_empty_test_split_says_what_it_is(export):
    from pycocotools.coco import COCO

    root = export["dirs"]["coco"]
    assert not (root / "images").exists()
    expected = _expected(export)
    single = COCO(str(root / "annotations.coco.json"))
    assert len(single.getImgIds()) == len(expected)
    for image in single.loadImgs(single.getImgIds()):
        assert (root / image["file_name"]).is_file()
        anns = single.loadAnns(single.getAnnIds(imgIds=[image["id"]]))
        want = expected[image["frame_index"]]
        assert {a["attributes"]["track_id"] for a in anns} == set(want)
        for a in anns:
            o = want[a["attributes"]["track_id"]]
            assert a["attributes"]["source"] == o["source"]
            assert a["attributes"]["confidence"] == pytest.approx(o["confidence"], abs=1e-4)
    counts = export["manifest"]["split"]["counts"]
    test = json.loads((root / "test" / "_annotations.coco.json").read_text())
    if counts["test"] == 0:
        assert test["info"]["copy_of"] == "valid" and "copy of valid" in (root / "test" / "README.txt").read_text()
        assert [i["file_name"] for i in test["images"]] == [
            i["file_name"] for i in json.loads((root / "valid" / "_annotations.coco.json").read_text())["images"]]
    else:
        assert "copy_of" not in test["info"] and not (root / "test" / "README.txt").exists()
        assert len(test["images"]) == counts["test"]
    for split in ("train", "valid", "test"):
        part = COCO(str(root / split / "_annotations.coco.json"))
        assert all((root / split / i["file_name"]).is_file() for i in part.loadImgs(part.getImgIds()))


def test_mot_sequence_is_read_by_trackeval_with_hota_one_against_itself(export, tmp_path):
    """TrackEval's MOT Challenge reader over the unzipped sequence (class-agnostic, as MOT15:
    the MOT17 setting scores class 1 only and treats class 2 as a distractor)."""
    trackeval = pytest.importorskip("trackeval")
    import shutil

    mot = export["dirs"]["mot"]
    seq = dict(line.split("=", 1) for line in (mot / "seqinfo.ini").read_text().splitlines()[1:])["name"]
    shutil.copytree(mot, tmp_path / "gt" / seq)
    tracker = tmp_path / "trackers" / "self" / "data"
    tracker.mkdir(parents=True)
    rows = (mot / "gt" / "gt.txt").read_text().splitlines()  # a tracker's file: frame,id,box,conf,-1,-1,-1
    (tracker / f"{seq}.txt").write_text("".join(",".join(r.split(",")[:7] + ["-1", "-1", "-1"]) + "\n" for r in rows))
    dataset = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(tmp_path / "gt"), "TRACKERS_FOLDER": str(tmp_path / "trackers"),
        "OUTPUT_FOLDER": str(tmp_path / "out"), "BENCHMARK": "MOT15", "SKIP_SPLIT_FOL": True,
        "SEQ_INFO": {seq: None}, "TRACKERS_TO_EVAL": ["self"], "PRINT_CONFIG": False})
    assert dataset.seq_lengths[seq] == len(export["delivered"])
    evaluator = trackeval.Evaluator({"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False,
                                     "TIME_PROGRESS": False, "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False,
                                     "PLOT_CURVES": False, "LOG_ON_ERROR": None})
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
               trackeval.metrics.Identity({"PRINT_CONFIG": False})]
    results, messages = evaluator.evaluate([dataset], metrics)
    assert messages["MotChallenge2DBox"]["self"] == "Success"
    scores = results["MotChallenge2DBox"]["self"][seq]["pedestrian"]
    assert np.mean(scores["HOTA"]["HOTA"]) == pytest.approx(1.0) and scores["Identity"]["IDF1"] == pytest.approx(1.0)
    assert scores["CLEAR"]["CLR_TP"] == len(rows)
