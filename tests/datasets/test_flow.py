"""End to end on a shared sequence: draft -> keyframe -> quote -> confirm -> burst worker ->
ready -> every export loads in its reader, and boxes agree across formats."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from xml.etree import ElementTree as ET

import pytest
import yaml

from tests.datasets.conftest import OPTIONS, first_box, make_draft, run_worker, top_up, CROSSING


async def _ready_dataset(app, user_client, services, options=OPTIONS) -> dict:
    await top_up(app, "user@example.com", 100_000)
    dataset = await make_draft(user_client)
    assert (await user_client.put(f"/api/v1/datasets/{dataset['id']}/options", json=options)).status_code == 200
    quote = (await user_client.get(f"/api/v1/datasets/{dataset['id']}/quote")).json()
    confirm = await user_client.post(f"/api/v1/datasets/{dataset['id']}/confirm",
                                     json={"expected_total_cents": quote["total_cents"]})
    assert confirm.status_code == 202, confirm.text
    assert confirm.json()["state"] == "queued"
    await run_worker(services[1])
    done = (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()
    assert done["state"] == "ready", done.get("error") or done
    return {"quote": quote, **done}


async def _zip(client, dataset_id: str, fmt: str) -> zipfile.ZipFile:
    response = await client.get(f"/api/v1/datasets/{dataset_id}/download", params={"format": fmt})
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(response.content))


ALL_FORMATS = ["yolo", "yolo_track", "coco", "cvat", "cvat_images", "ava", "mot"]


async def test_end_to_end_exports_load_and_agree(app, user_client, services, tmp_path):
    done = await _ready_dataset(app, user_client, services, {**OPTIONS, "formats": ALL_FORMATS})
    quote = done["quote"]
    assert quote["frames"] == 120 and quote["objects"] == 1 and quote["review_frames"] == 0
    assert done["delivered_frames"] <= quote["frames"]
    assert 0 < done["charged_cents"] <= quote["total_cents"]
    assert set(done["downloads"]) == set(ALL_FORMATS)
    did = done["id"]

    # YOLO: the Ultralytics layout, and ultralytics' own dataset check when it is installed
    yolo = await _zip(user_client, did, "yolo")
    yolo.extractall(tmp_path / "yolo")
    data = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())
    assert data["names"] == {0: "person"} and data["train"] == "images/train" and data["val"] == "images/val"
    train_images = sorted((tmp_path / "yolo" / "images" / "train").glob("*.jpg"))
    val_images = sorted((tmp_path / "yolo" / "images" / "val").glob("*.jpg"))
    assert len(train_images) + len(val_images) == done["delivered_frames"] and val_images
    assert all((tmp_path / "yolo" / "labels" / p.parent.name / (p.stem + ".txt")).exists() for p in train_images + val_images)
    # contiguous time blocks: valid frames form runs, not a random scatter
    val_frames = sorted(int(p.stem.split("_")[1]) for p in val_images)
    runs = 1 + sum(1 for a, b in zip(val_frames, val_frames[1:]) if b != a + 1)
    assert runs <= len(val_frames) / 3
    try:
        from ultralytics.data.utils import check_det_dataset
    except ImportError:
        check_det_dataset = None
    if check_det_dataset is not None:
        info = check_det_dataset(str(tmp_path / "yolo" / "data.yaml"))
        assert info["nc"] == 1

    # COCO: pycocotools loads both layouts
    from pycocotools.coco import COCO

    coco_zip = await _zip(user_client, did, "coco")
    coco_zip.extractall(tmp_path / "coco")
    for split in ("train", "valid", "test"):
        assert (tmp_path / "coco" / split / "_annotations.coco.json").exists()
    single = COCO(str(tmp_path / "coco" / "annotations.coco.json"))
    assert len(single.getImgIds()) == done["delivered_frames"]
    assert all((tmp_path / "coco" / img["file_name"]).exists() for img in single.loadImgs(single.getImgIds()))
    assert single.loadCats(single.getCatIds())[0]["name"] == "person"
    train = COCO(str(tmp_path / "coco" / "train" / "_annotations.coco.json"))
    assert all((tmp_path / "coco" / "train" / img["file_name"]).exists() for img in train.loadImgs(train.getImgIds()))

    # CVAT for video 1.1: one track (one object), keyframe flag on frame 0
    cvat = await _zip(user_client, did, "cvat")
    root = ET.fromstring(cvat.read("annotations.xml"))
    assert root.findtext("version") == "1.1"
    tracks = root.findall("track")
    assert len(tracks) == 1 and tracks[0].get("label") == "person"
    first = tracks[0].find("box[@frame='0']")
    assert first.get("keyframe") == "1"

    # AVA v2.x CSV: no header, whole-second timestamps, one row per second while the person is visible
    ava = await _zip(user_client, did, "ava")
    rows = list(csv.reader(io.StringIO(ava.read("annotations.csv").decode())))
    assert rows[0][0] == done["video_id"] and rows[0][1] == "0000" and rows[0][6] == "1" and rows[0][7] == "1"
    assert [int(r[1]) for r in rows] == list(range(len(rows)))
    assert b'name: "person"' in ava.read("label_map.pbtxt")

    # The same box in every format (frame 0 is the keyframe: the seed box itself)
    seed = first_box(CROSSING)
    width, height = 360, 240
    yolo_label = (tmp_path / "yolo" / "labels" / ("val" if (tmp_path / "yolo" / "labels" / "val" / "frame_000000.txt").exists() else "train") / "frame_000000.txt")
    _, cx, cy, w, h = (float(v) for v in yolo_label.read_text().split())
    from_yolo = [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
    image = next(i for i in single.loadImgs(single.getImgIds()) if i["frame_index"] == 0)
    x, y, bw, bh = single.loadAnns(single.getAnnIds(imgIds=[image["id"]]))[0]["bbox"]
    from_coco = [x, y, x + bw, y + bh]
    from_cvat = [float(first.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")]
    ava_row = [float(v) for v in rows[0][2:6]]
    from_ava = [ava_row[0] * width, ava_row[1] * height, ava_row[2] * width, ava_row[3] * height]
    manifest = json.loads(yolo.read("manifest.json"))
    assert manifest["frames"][0]["source"] == "keyframe"
    for boxes in (from_yolo, from_coco, from_cvat):
        assert boxes == pytest.approx(seed, abs=1.0)
    assert from_ava == pytest.approx(seed, abs=max(width, height) * 0.0005 + 1.0)  # AVA keeps 3 decimals

    # The formats added for tracking people (read back in depth by tests/vision/test_formats.py)
    mot = await _zip(user_client, did, "mot")
    gt_rows = mot.read("gt/gt.txt").decode().splitlines()
    assert len(gt_rows) == done["delivered_frames"] and gt_rows[0].split(",")[:2] == ["1", "1"]
    assert b"seqLength=%d" % done["delivered_frames"] in mot.read("seqinfo.ini")
    images_xml = ET.fromstring((await _zip(user_client, did, "cvat_images")).read("annotations.xml"))
    assert len(images_xml.findall("image")) == done["delivered_frames"]
    assert images_xml.find("image/box/attribute[@name='track_id']").text == "1"
    track_zip = await _zip(user_client, did, "yolo_track")
    assert track_zip.read("tracks/" + yolo_label.relative_to(tmp_path / "yolo" / "labels").as_posix()) == b"1\n"


async def test_cabinet_and_dataset_page_show_downloads(app, user_client, services):
    done = await _ready_dataset(app, user_client, services, {**OPTIONS, "formats": ["yolo", "coco"]})
    cabinet = await user_client.get("/datasets")
    assert done["name"] in cabinet.text and f"/api/v1/datasets/{done['id']}/download?format=yolo" in cabinet.text
    assert "format=cvat" not in cabinet.text
    page = await user_client.get(f"/datasets/{done['id']}/overview")
    assert 'id="downloads"' in page.text and 'id="timeline"' in page.text and 'class="thumb"' in page.text
    assert "Tracks made by the built-in tracker (LK + NCC)" in page.text  # no TRACKER_MODEL_DIR in the tests
    assert (await user_client.get(f"/api/v1/datasets/{done['id']}/download", params={"format": "cvat"})).status_code == 404
    low = await user_client.get(f"/datasets/{done['id']}/overview", params={"low": "true"})
    assert low.status_code == 200
