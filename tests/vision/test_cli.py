"""The `forge propagate` command-line contract, run as a subprocess."""

import json

import pytest

from .conftest import seeds_at


def _write_seeds(path, gt, frame=0, gone=()):
    objs = [{"track_id": s.track_id, "class": "thing", "box": [float(v) for v in s.box]} for s in seeds_at(gt, frame)]
    doc = {"keyframes": {str(frame): objs}}
    for f, tid in gone:
        doc["keyframes"].setdefault(str(f), []).append({"track_id": tid, "gone": True})
    path.write_text(json.dumps(doc))
    return path


def test_cli_ok(run_cli, synthetic_video, tmp_path):
    video, gt = synthetic_video
    seeds = _write_seeds(tmp_path / "seeds.json", gt, gone=[(60, 3)])
    out = tmp_path / "out.json"
    r = run_cli(video, "--seeds", seeds, "--out", out, "--budget", "4", "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    doc = json.loads(out.read_text())
    assert doc["video"] == {"frames": 90, "fps": 30.0, "width": 640, "height": 360}
    assert [f["frame"] for f in doc["frames"]] == list(range(90))
    first = doc["frames"][0]["objects"]
    assert {o["track_id"] for o in first} == {1, 2, 3}
    assert all(set(o) == {"track_id", "class", "box", "confidence"} for o in first)
    assert all(o["class"] == "thing" and o["confidence"] == 1.0 for o in first)
    assert all(3 not in {o["track_id"] for o in f["objects"]} for f in doc["frames"][60:])
    for f in doc["frames"]:
        for o in f["objects"]:
            x1, y1, x2, y2 = o["box"]
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360 and 0 <= o["confidence"] <= 1
    assert len(doc["hard_frames"]) == 4 and 0 not in doc["hard_frames"]
    assert doc["timing"]["seconds"] > 0 and doc["timing"]["fps"] > 0


def test_cli_budget_share(run_cli, synthetic_video, tmp_path):
    video, gt = synthetic_video
    out = tmp_path / "out.json"
    r = run_cli(video, "--seeds", _write_seeds(tmp_path / "s.json", gt), "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(out.read_text())["hard_frames"]) <= round(0.05 * 90)


@pytest.mark.parametrize(
    "case, needle",
    [
        ("missing_video", "no such file"),
        ("not_a_video", "not a video"),
        ("malformed_json", "malformed JSON"),
        ("missing_seeds", "no such file"),
        ("box_outside", "outside"),
        ("keyframe_past_end", "outside the video"),
        ("no_keyframes_key", "keyframes"),
        ("bad_box", "box must be"),
        ("bad_budget", "budget"),
        ("no_out", "--out"),
    ],
)
def test_cli_bad_input(run_cli, synthetic_video, tmp_path, case, needle):
    video, gt = synthetic_video
    good = {"keyframes": {"0": [{"track_id": 1, "class": "a", "box": [10, 10, 60, 60]}]}}
    seeds = tmp_path / "seeds.json"
    seeds.write_text(json.dumps(good))
    out = tmp_path / "out.json"
    args = [video, "--seeds", seeds, "--out", out]
    if case == "missing_video":
        args[0] = tmp_path / "nope.mp4"
    elif case == "not_a_video":
        args[0] = tmp_path / "fake.mp4"
        args[0].write_text("hello")
    elif case == "malformed_json":
        seeds.write_text("{not json")
    elif case == "missing_seeds":
        args[2] = tmp_path / "none.json"
    elif case == "box_outside":
        seeds.write_text(json.dumps({"keyframes": {"0": [{"track_id": 1, "class": "a", "box": [650, 10, 700, 60]}]}}))
    elif case == "keyframe_past_end":
        seeds.write_text(json.dumps({"keyframes": {"90": [{"track_id": 1, "class": "a", "box": [10, 10, 60, 60]}]}}))
    elif case == "no_keyframes_key":
        seeds.write_text(json.dumps({"frames": {}}))
    elif case == "bad_box":
        seeds.write_text(json.dumps({"keyframes": {"0": [{"track_id": 1, "class": "a", "box": [1, 2, 3]}]}}))
    elif case == "bad_budget":
        args += ["--budget", "-1"]
    elif case == "no_out":
        args = args[:3]
    r = run_cli(*args)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert needle in lines[0] and "Traceback" not in r.stderr
    assert not out.exists()
