"""An uploaded model can no longer run code (issue 16, item 1): a pickle whose payload would
write a marker file is refused and the marker never appears, through the upload and every
other way a model is loaded; a real YOLO checkpoint still loads and predicts; ONNX graphs
are checked before onnxruntime sees them; the check runs in a limited child process."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from tests.datasets.conftest import run_worker
from tests.detectors.conftest import upload_model


class WritesMarker:
    """Unpickling this calls `exec`, which writes the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


class LooksLikeALayer:
    """A reducer that names an allowed-looking module but a function, not a layer class."""

    def __reduce__(self):
        return (os.system, ("true",))


@pytest.fixture(scope="session")
def hostile_files(tmp_path_factory) -> dict[str, Path]:
    import torch

    root = tmp_path_factory.mktemp("hostile")
    marker = root / "MARKER"
    files = {"marker": marker}
    (root / "bare.pt").write_bytes(pickle.dumps({"model": WritesMarker(marker)}))  # legacy: a bare pickle
    torch.save({"model": WritesMarker(marker)}, root / "zip.pt")  # torch.save's zip, the payload inside
    torch.save({"model": LooksLikeALayer()}, root / "system.pt")
    # a real checkpoint with the payload hidden in an ordinary-looking field
    from src.detectors.inference import ultralytics

    model = ultralytics().YOLO("yolov8n.yaml")
    model.save(str(root / "real.pt"))
    checkpoint = torch.load(root / "real.pt", weights_only=False)  # our own file: trusted here
    checkpoint["docs"] = WritesMarker(marker)
    torch.save(checkpoint, root / "trojan.pt")
    files.update({p.stem: p for p in root.glob("*.pt")})
    assert not marker.exists()
    return files


@pytest.mark.parametrize("name, says", [("bare", "bare pickle"), ("zip", "builtins.exec"), ("system", "system"),
                                         ("trojan", "builtins.exec")])
def test_every_loading_path_refuses_a_code_running_pickle(hostile_files, name, says):
    from src.detectors import inference, safe_load
    from src.detectors.exceptions import InvalidModel

    path = str(hostile_files[name])
    for attempt in (lambda: inference.validate(path, "pt", []),  # the upload check, in the child
                    lambda: inference.load(path, "pt"),  # predict / track / evaluate in the worker
                    lambda: inference.ultralytics().YOLO(path),  # ultralytics itself, e.g. a training base
                    lambda: safe_load.load_checkpoint(path)):
        with pytest.raises((InvalidModel, TypeError)) as refused:
            attempt()
        assert says in str(refused.value) or says in getattr(refused.value, "message", ""), refused.value
    assert not hostile_files["marker"].exists()


def test_the_marker_would_appear_with_a_full_unpickling(hostile_files, tmp_path):
    """The files really are hostile: torch's full unpickling runs the payload (in a copy)."""
    import torch

    marker = tmp_path / "MARKER"
    torch.save({"model": WritesMarker(marker)}, tmp_path / "zip.pt")
    torch.load(tmp_path / "zip.pt", weights_only=False)
    assert marker.exists()


async def test_an_uploaded_hostile_model_is_invalid_with_a_clear_message(app, user_client, services, hostile_files):
    for name in ("zip", "bare"):
        created = await upload_model(user_client, hostile_files[name], name=name)
        assert created.status_code == 202, created.text
        await run_worker(services[1])
        model = (await user_client.get(f"/api/v1/models/{created.json()['id']}")).json()
        assert model["state"] == "invalid", model
        assert "could run code" in model["error"]
    assert not hostile_files["marker"].exists()


def test_a_real_checkpoint_still_loads_and_predicts(hostile_files):
    from src.detectors import inference

    path = str(hostile_files["real"])
    info = inference.validate(path, "pt", [])
    assert len(info.classes) == 80 and info.imgsz is None
    boxes = inference.predict(path, "pt", info.classes, np.full((240, 320, 3), 114, np.uint8))
    assert isinstance(boxes, list)


def test_the_allow_list_is_what_a_yolo_checkpoint_names(hostile_files):
    import torch

    from src.detectors import safe_load

    torch.serialization.clear_safe_globals()  # earlier loads registered them (load_checkpoint registers again)
    names = torch.serialization.get_unsafe_globals_in_checkpoint(str(hostile_files["real"]))
    assert "ultralytics.nn.tasks.DetectionModel" in names
    assert len(safe_load.allowed_globals(hostile_files["real"])) == len(set(names))
    for refused in ("builtins.exec", "builtins.eval", "os.system", "posix.system", "subprocess.Popen",
                    "ultralytics.nn.modules.block.torch", "torch.nn.modules.module._addindent", "torch.load",
                    "ultralytics.nn.tasks.torch_safe_load", "builtins.__import__", "numpy.load"):
        assert safe_load._resolve(refused) is None, refused


def test_the_restricted_getattr_reaches_only_layer_methods():
    import pickle as std_pickle

    import torch

    from src.detectors.safe_load import _restricted_getattr

    assert _restricted_getattr(torch.nn.Conv2d, "forward") is torch.nn.Conv2d.forward
    for obj, name in ((os, "system"), (torch.nn.Conv2d, "__init__"), (torch.nn.Conv2d, "_apply"), (str, "join")):
        with pytest.raises(std_pickle.UnpicklingError):
            _restricted_getattr(obj, name)


def test_onnx_graphs_are_checked_before_running(tmp_path, model_files):
    import onnx
    from onnx import TensorProto, helper

    from src.detectors import inference, safe_load
    from src.detectors.exceptions import InvalidModel

    def save(graph, name, domain=""):
        opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
        path = tmp_path / name
        onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
        return path

    image = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 64, 64])
    custom = save(helper.make_graph([helper.make_node("Evil", ["images"], ["out"], domain="com.evil")], "g", [image], [out]),
                  "custom.onnx", domain="com.evil")
    dynamic_in = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, "h", "w"])
    dynamic = save(helper.make_graph([helper.make_node("Relu", ["images"], ["out"])], "g", [dynamic_in], [out]), "dynamic.onnx")
    weights = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    weights.data_location = TensorProto.EXTERNAL
    weights.ClearField("float_data")
    weights.external_data.add(key="location", value="../../../../etc/passwd")
    external = save(helper.make_graph([helper.make_node("Add", ["images", "w"], ["out"])], "g", [image], [out],
                                      initializer=[weights]), "external.onnx")
    fine = save(helper.make_graph([helper.make_node("Relu", ["images"], ["out"])], "g", [image], [out]), "fine.onnx")

    for path, says in ((custom, "com.evil"), (dynamic, "fixed size"), (external, "external"),
                       (model_files["gray.onnx"], "[1, 1, 32, 32]")):
        with pytest.raises(InvalidModel, match=says):
            safe_load.check_onnx(path)
        with pytest.raises(InvalidModel):
            inference.validate(str(path), "onnx", ["a"])
    safe_load.check_onnx(fine)  # a plain standard graph passes the graph check


def test_the_child_is_limited(hostile_files, monkeypatch):
    from src.detectors import safe_load
    from src.detectors.exceptions import InvalidModel

    with pytest.raises(InvalidModel, match="longer than"):
        safe_load.check_in_child(str(hostile_files["real"]), "pt", [], timeout=0.5)
    monkeypatch.setattr(safe_load, "CHILD_MEMORY_BYTES", 300 << 20)  # too little to even import torch
    with pytest.raises(InvalidModel):
        safe_load.check_in_child(str(hostile_files["real"]), "pt", [])
