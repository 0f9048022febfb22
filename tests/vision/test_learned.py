"""The learned tracker (NanoTrack v2 through onnxruntime) as the engine's tracker: it runs
when its files are configured, the built-in tracker runs and says so when they are not, and
`forge tracker download` fetches them with their hashes checked. The model files are test
data in ../shared/models (never committed)."""

import functools
import http.server
import json
import shutil
import threading

import numpy as np
import pytest

from src.vision.metrics import frame_ious
from src.vision.nanotrack import MODEL_SHA256, NanoModel, NanoState, sha256_of, track_batch
from src.vision.propagate import LK_ENGINE, propagate
from src.vision.types import SeedObject

from .conftest import REPO, SHARED_DATA, decoded_store, seeds_at, sequence

MODEL_DIR = SHARED_DATA.parent / "models" / "nanotrack-v2"


@pytest.fixture(scope="session")
def model_dir():
    if not all((MODEL_DIR / name).is_file() for name in MODEL_SHA256):
        pytest.skip(f"NanoTrack v2 files not found in {MODEL_DIR}")
    pytest.importorskip("onnxruntime")
    return MODEL_DIR


def test_without_the_model_files_the_built_in_tracker_runs_and_says_so(synthetic_video, tmp_path):
    path, gt = synthetic_video
    result = propagate(path, {0: seeds_at(gt, 0)}, budget=0, tracker_model=tmp_path)
    assert result.engine == LK_ENGINE and "missing nanotrack_backbone_sim.onnx" in result.engine_note
    assert result.to_json()["engine"] == LK_ENGINE
    plain = propagate(path, {0: seeds_at(gt, 0)}, budget=0)
    assert plain.engine == LK_ENGINE and "TRACKER_MODEL_DIR" in plain.engine_note


def test_cli_says_when_the_learned_tracker_is_not_used(run_cli, synthetic_video, tmp_path):
    video, gt = synthetic_video
    seeds = tmp_path / "seeds.json"
    seeds.write_text(json.dumps({"keyframes": {"0": [{"track_id": 1, "class": "a", "box": [float(v) for v in gt[1][0]]}]}}))
    out = tmp_path / "out.json"
    r = run_cli(video, "--seeds", seeds, "--out", out, "--quiet", "--tracker-model", tmp_path / "empty")
    assert r.returncode == 0, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "learned tracker was not used" in r.stderr
    assert json.loads(out.read_text())["engine"] == LK_ENGINE


def test_the_learned_engine_tracks_a_real_sequence(model_dir):
    """otb_crossing, one keyframe: NanoTrack alone (cv2.TrackerNano) measured 0.766 mean IoU
    here, the built-in tracker about 0.78; the learned engine must stay near (floor 0.65)."""
    path, info, gt = sequence("otb_crossing")
    result = propagate(path, {0: seeds_at(gt, 0)}, budget=3, workers=2, tracker_model=model_dir)
    assert result.engine == "nanotrack-v2" and result.engine_note == ""
    v = frame_ious(result.tracks[0].boxes, gt[1])
    assert np.nanmean(v) >= 0.65, np.nanmean(v)
    c = result.tracks[0].confidence
    assert ((c >= 0) & (c <= 1)).all() and len(result.hard_frames) == 3


def test_a_batch_gives_each_object_what_it_gets_alone(model_dir):
    """Several objects in one model call: the same boxes as one call per object."""
    path, info, gt = sequence("mot17_04_mini")
    model = NanoModel.load(model_dir)
    boxes = [g[0] * 0.5 for g in list(gt.values())[:4]]
    with decoded_store(path, 0.5) as (reader, _):
        alone = [NanoState(model, reader.get(0), b) for b in boxes]
        together = [NanoState(model, reader.get(0), b) for b in boxes]
        one = [track_batch([s], [reader.get(1)])[0] for s in alone]
        many = track_batch(together, [reader.get(1)] * len(together))
    for (b1, s1), (b2, s2) in zip(one, many):
        assert np.allclose(b1, b2, atol=1e-2) and abs(s1 - s2) < 1e-4


def test_the_learned_engine_runs_in_processes(model_dir, exit_video):
    """Passes in the process pool load the model there (and the object leaving the frame is
    still reported absent)."""
    path, gt = exit_video
    result = propagate(path, {0: seeds_at(gt, 0)}, budget=0, workers=2, processes=True, tracker_model=model_dir)
    assert result.engine == "nanotrack-v2"
    fully_out = np.flatnonzero(np.isnan(gt[1]).any(1))
    assert not result.tracks[0].present[fully_out[10:]].any()  # (its velocity carries it out a few frames late)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """serve(folder) -> http://127.0.0.1:PORT serving that folder (loopback only)."""
    servers = []

    def start(folder):
        handler = functools.partial(_Quiet, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _forge_tracker(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "src.cli", "tracker", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_download_fetches_the_files_and_checks_their_hashes(model_dir, serve, tmp_path):
    url = serve(model_dir)
    target = tmp_path / "model"
    r = _forge_tracker("download", target, "--base-url", url)
    assert r.returncode == 0, r.stderr
    for name, digest in MODEL_SHA256.items():
        assert sha256_of(target / name) == digest
    again = _forge_tracker("download", target, "--base-url", url)  # already there: kept
    assert again.returncode == 0 and "already there" in again.stdout
    result = propagate(*_one_keyframe(), budget=0, tracker_model=target)
    assert result.engine == "nanotrack-v2"


def _one_keyframe():
    path, _, gt = sequence("otb_crossing")
    return path, {0: seeds_at(gt, 0)}


def test_download_refuses_a_corrupted_file(model_dir, serve, tmp_path):
    bad = tmp_path / "served"
    bad.mkdir()
    for name in MODEL_SHA256:
        shutil.copy(model_dir / name, bad / name)
    data = bytearray((bad / "nanotrack_head_sim.onnx").read_bytes())
    data[1000] ^= 0xFF
    (bad / "nanotrack_head_sim.onnx").write_bytes(bytes(data))
    target = tmp_path / "model"
    r = _forge_tracker("download", target, "--base-url", serve(bad))
    assert r.returncode == 2
    assert "corrupted" in r.stderr and "Traceback" not in r.stderr
    assert not (target / "nanotrack_head_sim.onnx").exists()
    assert not list(target.glob("*.part"))
    missing = _forge_tracker("download", tmp_path / "other", "--base-url", serve(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "HTTP 404" in missing.stderr


def test_propagation_with_a_half_model_falls_back(model_dir, synthetic_video, tmp_path):
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(model_dir / "nanotrack_backbone_sim.onnx", half)
    path, gt = synthetic_video
    result = propagate(path, {0: [SeedObject(1, "a", gt[1][0])]}, budget=0, tracker_model=half)
    assert result.engine == LK_ENGINE and "nanotrack_head_sim.onnx" in result.engine_note
