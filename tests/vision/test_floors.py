"""Regression floors on every shared sequence, for both engines, on short cuts.

The cut and the objects are bench.engine's (`python -m bench.engine --max-frames 40
--max-objects 5`): the first 40 frames, the 5 objects present longest, each seeded at its
first appearance. BENCH holds the mean IoU each engine measured there on 2026-12-01; a floor is
FLOOR_SHARE of it: a regression guard, the same share for every sequence and engine, not a
number tuned to pass. CSRT and NanoTrack alone on the same cuts are in docs/engine.md."""

import numpy as np
import pytest

from bench.engine import first_appearance, ious_of, prepare
from src.vision.propagate import propagate

from .conftest import SEQUENCES

MODEL_DIR = SEQUENCES.parent.parent / "models" / "nanotrack-v2"
FLOOR_SHARE = 0.85
FRAMES, OBJECTS = 40, 5
# mean IoU measured by bench.engine on these cuts: {sequence: (learned engine, built-in engine)}
BENCH = {
    "dtb70_gull2": (0.831, 0.493),
    "dtb70_snowboarding4": (0.772, 0.729),
    "mot15_kitti17": (0.552, 0.226),
    "mot15_pets09_s2l1": (0.620, 0.542),
    "mot16_09": (0.748, 0.705),
    "mot17_04_mini": (0.935, 0.970),
    "otb_bolt": (0.658, 0.140),
    "otb_crossing": (0.755, 0.774),
    "otb_faceocc1": (0.762, 0.848),
    "uav123_boat1": (0.839, 0.781),
    "uav123_car14": (0.862, 0.873),
    "uav123_group1_4": (0.628, 0.811),
    "uav123_person12_1": (0.730, 0.760),
    "uav123_wakeboard10": (0.660, 0.631),
    "uav123_wakeboard7": (0.760, 0.732),
}


@pytest.fixture(scope="module")
def cuts(tmp_path_factory):
    return tmp_path_factory.mktemp("floor_cuts")


@pytest.mark.parametrize("engine", ["nanotrack-v2", "lk-ncc"])
@pytest.mark.parametrize("name", sorted(BENCH))
def test_floor(name, engine, cuts):
    if not (SEQUENCES / name).is_dir():
        pytest.skip(f"sequence {name} missing from {SEQUENCES}")
    model = None
    if engine == "nanotrack-v2":
        pytest.importorskip("onnxruntime")
        if not (MODEL_DIR / "nanotrack_head_sim.onnx").is_file():
            pytest.skip(f"NanoTrack v2 files not found in {MODEL_DIR}")
        model = MODEL_DIR
    path, info, gt = prepare(name, cuts, FRAMES, OBJECTS)
    result = propagate(path, first_appearance(gt), budget=0, info=info, workers=2, tracker_model=model)
    assert result.engine == engine
    m = float(np.nanmean(ious_of({t.track_id: t.boxes for t in result.tracks}, gt)))
    floor = FLOOR_SHARE * BENCH[name][0 if engine == "nanotrack-v2" else 1]
    assert m >= floor, f"{name} ({engine}): mean IoU {m:.3f} < floor {floor:.3f}"
