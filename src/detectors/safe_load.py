"""Uploaded model files are untrusted: load them so that they cannot run code.

A `.pt` checkpoint is a pickle, and unpickling it in full (`torch.load(weights_only=False)`,
ultralytics' default) runs whatever callable the file names. Here:

- `load_checkpoint` refuses a legacy (non-zip) pickle outright, lists the globals the
  checkpoint's pickle names *without unpickling it* (`torch.serialization.
  get_unsafe_globals_in_checkpoint`), refuses the file unread when one is outside the
  allow-list of what an ultralytics YOLO detector checkpoint needs (its `torch.nn` and
  `ultralytics.nn.modules` layer classes, `DetectionModel`, ultralytics' loss/assigner
  classes, `IterableSimpleNamespace`, numpy scalars and dtypes, paths, and a `getattr` that
  only reaches a layer's `forward`), then loads it with `torch.load(weights_only=True)`
  and exactly those globals registered, so torch's restricted unpickler is the second wall;
- `install()` makes ultralytics load every checkpoint this way (`YOLO(path)` for prediction,
  tracking, training from an uploaded base and evaluation) and builds models from a
  checkpoint's yaml without `eval` (ultralytics' `ULTRALYTICS_SAFE_LOAD` mode);
- `check_onnx` checks an ONNX graph before onnxruntime sees it: `onnx.checker`, operators
  only from the standard `ai.onnx` domain, no external data (which could name any file on
  the server), no local functions, and one fixed `[1, 3, H, W]` input;
- `check_in_child` runs the whole upload check (load + one blank-frame prediction) in a
  fresh child process under CPU-time and address-space limits (`resource.setrlimit`) and a
  wall-clock timeout, so a hostile file cannot hang or exhaust the worker either.

Run as `python -m src.detectors.safe_load PATH KIND CLASSES_JSON` it is that child.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

from src.detectors.exceptions import InvalidModel

ALLOWED_LAYER_PACKAGES = ("torch.nn.modules.", "ultralytics.nn.modules.")
ALLOWED_CLASS_MODULES = ("ultralytics.utils.loss", "ultralytics.utils.tal")  # a trained model's criterion
ALLOWED_ONNX_DOMAINS = {"", "ai.onnx"}
CHILD_TIMEOUT_S = 180.0
CHILD_CPU_S = 300
CHILD_MEMORY_BYTES = 8 << 30  # address space; importing torch + ultralytics maps about 3.5 GB
LIMITS_ENV = "FORGE_MODEL_CHECK_LIMITS"  # "cpu_seconds,address_space_bytes", from parent to child
_lock = threading.Lock()


def _restricted_getattr(obj: Any, name: str) -> Any:
    """`getattr` as YOLO checkpoints use it (`Detect.forward`, an enum member): layer classes
    and enums only, no dunder names."""
    import enum

    import torch

    if isinstance(obj, type) and not name.startswith("_") and issubclass(obj, (torch.nn.Module, enum.Enum)):
        return getattr(obj, name)
    if isinstance(obj, torch.nn.Module) and name in {"forward", "forward_fuse"}:
        return getattr(type(obj), name).__get__(obj)
    raise pickle.UnpicklingError(f"getattr({type(obj).__name__}, {name!r}) is not allowed in a model file")


def _resolve(name: str) -> Any | None:
    """The object an allowed global name stands for, or None when the name is not allowed."""
    import importlib
    import pathlib

    import numpy as np
    import torch

    module, _, attr = name.rpartition(".")
    if name == "builtins.getattr":
        return (_restricted_getattr, name)
    if name in ("pathlib.PosixPath", "pathlib.WindowsPath", "pathlib._local.PosixPath", "pathlib._local.WindowsPath"):
        return (pathlib.PosixPath, name)  # a path in train_args (building one does not touch the disk)
    if name in ("numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar"):
        return (np.float64(0).__reduce__()[0], name)
    if name == "numpy.dtype":
        return np.dtype
    if module == "numpy.dtypes":
        obj = getattr(np.dtypes, attr, None)
        return obj if isinstance(obj, type) and issubclass(obj, np.dtype) else None
    if name == "ultralytics.utils.IterableSimpleNamespace":
        from ultralytics.utils import IterableSimpleNamespace

        return IterableSimpleNamespace
    if name == "ultralytics.nn.tasks.DetectionModel":
        from ultralytics.nn.tasks import DetectionModel

        return DetectionModel
    layer = module.startswith(ALLOWED_LAYER_PACKAGES) or module + "." in ALLOWED_LAYER_PACKAGES
    if not (layer or module in ALLOWED_CLASS_MODULES) or not attr or attr.startswith("_"):
        return None
    try:
        obj = getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return None
    if not isinstance(obj, type) or obj.__module__ != module:
        return None  # a function, or something imported into the module from elsewhere
    if layer and not issubclass(obj, torch.nn.Module):
        return None
    return obj


def allowed_globals(path: str | Path) -> list[Any]:
    """The allow-list entries for the globals this checkpoint names; InvalidModel (read, not
    unpickled) when it is not a zip checkpoint or names anything else."""
    import torch

    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(2)
        if head[:1] == b"\x80":
            raise InvalidModel("This .pt file is a bare pickle (the legacy torch.save format), which is refused: "
                               "loading it could run code. Upload the best.pt / last.pt written by ultralytics "
                               "(a zip checkpoint).")
        raise InvalidModel("This checkpoint could not be loaded: the file is damaged or truncated (not a complete "
                           "torch.save zip). Upload it again.")
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as error:  # noqa: BLE001 - a damaged zip
        raise InvalidModel(f"This is not a readable PyTorch checkpoint ({_short(error)}).") from error
    entries, refused = [], []
    for name in sorted(set(names)):
        entry = _resolve(name)
        (refused if entry is None else entries).append(name if entry is None else entry)
    if refused:
        shown = ", ".join(refused[:5]) + (f" and {len(refused) - 5} more" if len(refused) > 5 else "")
        raise InvalidModel(f"This checkpoint refers to {shown}, which an ultralytics detector checkpoint never "
                           "needs; it was refused without being loaded (loading it could run code).")
    return entries


def load_checkpoint(path: str | Path) -> Any:
    """`torch.load(path, weights_only=True)` with only the allow-listed globals it needs."""
    import torch

    entries = allowed_globals(path)
    with _lock:  # process-wide registration: a scoped safe_globals() would race between threads
        torch.serialization.add_safe_globals(entries)
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise InvalidModel(f"This checkpoint needs something a detector checkpoint does not ({_short(error)}); "
                           "it was refused.") from error
    except (RuntimeError, EOFError, ValueError) as error:
        raise InvalidModel(f"This is not a readable PyTorch checkpoint ({_short(error)}).") from error


def _ultralytics_torch_safe_load(weight, safe_only=None):
    """Drop-in for `ultralytics.nn.tasks.torch_safe_load`: every checkpoint through `load_checkpoint`."""
    checkpoint = load_checkpoint(weight)
    if not isinstance(checkpoint, dict):
        raise InvalidModel("This .pt file is not an ultralytics checkpoint (a dict with the model); save it with "
                           "model.save() or upload the best.pt written by training.")
    return checkpoint, str(weight)


def install() -> None:
    """Route the imported ultralytics' checkpoint loading through `load_checkpoint` (idempotent)."""
    from ultralytics.nn import tasks

    tasks.torch_safe_load = _ultralytics_torch_safe_load
    tasks.SAFE_LOAD = True  # build models from a checkpoint's yaml without eval()


def check_onnx(path: str | Path) -> None:
    """InvalidModel unless the ONNX graph is well-formed, uses only standard operators, keeps all
    its data inside the file and takes one fixed-size image input."""
    try:
        import onnx
        from onnx import TensorProto
    except ImportError as error:  # pragma: no cover - requirements/ml.txt pins it
        raise InvalidModel("ONNX models need the onnx package on the worker; upload the .pt checkpoint instead.") from error
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # noqa: BLE001 - any parse failure is the file's fault
        raise InvalidModel(f"This is not a readable ONNX model ({_short(error)}).") from error
    graph = model.graph
    domains = {op.domain for op in model.opset_import} | {node.domain for node in graph.node}
    foreign = sorted(d for d in domains if d not in ALLOWED_ONNX_DOMAINS)
    if foreign:
        raise InvalidModel(f"The ONNX model uses operators outside the standard set ({', '.join(foreign)}); only "
                           "ai.onnx operators are run.")
    if model.functions:
        raise InvalidModel("The ONNX model defines its own functions; export it again without custom functions.")

    def tensors():
        yield from graph.initializer
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.HasField("t"):
                    yield attribute.t
                yield from attribute.tensors
                if attribute.HasField("g") or attribute.graphs:
                    raise InvalidModel("The ONNX model has sub-graphs (If / Loop); a YOLO detector export has none.")

    if any(t.data_location == TensorProto.EXTERNAL or t.external_data for t in tensors()):
        raise InvalidModel("The ONNX model keeps weights in external files, which are refused (they could name any "
                           "file on the server); export it as one self-contained .onnx file.")
    try:
        onnx.checker.check_model(model)
    except Exception as error:  # noqa: BLE001 - any check failure is the file's fault
        raise InvalidModel(f"This ONNX model does not pass onnx.checker ({_short(error)}).") from error
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise InvalidModel(f"The ONNX model has {len(inputs)} inputs; a detector exported by ultralytics has one "
                           "image input.")
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 4 or not all(d.HasField("dim_value") and d.dim_value > 0 for d in dims):
        shown = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
        raise InvalidModel(f"The ONNX model's input is {shown}; export it with a fixed size [1, 3, H, W] (e.g. imgsz=640).")
    if dims[0].dim_value != 1 or dims[1].dim_value != 3 or dims[2].dim_value > 4096 or dims[3].dim_value > 4096:
        raise InvalidModel(f"The ONNX model's input is {[d.dim_value for d in dims]}; a detector takes [1, 3, H, W] "
                           "images of at most 4096 px.")


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
    return text[:200]


# ---------------------------------------------------------------- the isolated check

def _limit_child() -> None:
    """The child's own limits, set before it reads the file (the parent passes its values)."""
    import resource

    cpu, memory = (int(v) for v in os.environ.get(LIMITS_ENV, f"{CHILD_CPU_S},{CHILD_MEMORY_BYTES}").split(","))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def check_in_child(path: str, kind: str, classes: list[str], *, timeout: float = CHILD_TIMEOUT_S) -> dict[str, Any]:
    """Run `inference.validate_here` in a fresh, limited child process; its ModelInfo fields, or
    InvalidModel with what went wrong (a refusal, a crash, too much memory or time)."""
    import signal
    import subprocess

    from src.config import ROOT

    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
           LIMITS_ENV: f"{CHILD_CPU_S},{CHILD_MEMORY_BYTES}"}
    command = [sys.executable, "-m", "src.detectors.safe_load", str(path), kind, json.dumps(classes)]
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as error:
        raise InvalidModel(f"Checking the model took longer than {timeout:.0f} s; it was stopped and refused.") from error
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode == 0 and lines:
        report = json.loads(lines[-1])
        if report.get("error"):
            raise InvalidModel(report["error"])
        return report["info"]
    if done.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise InvalidModel("Checking the model used more CPU time than allowed; it was stopped and refused.")
    if "MemoryError" in done.stderr or "bad_alloc" in done.stderr or "Cannot allocate memory" in done.stderr:
        raise InvalidModel(f"Checking the model needed more than {CHILD_MEMORY_BYTES >> 30} GiB of memory; refused.")
    last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
    raise InvalidModel(f"The model check crashed (exit {done.returncode}: {last}); the file was refused.")


def _child_main(argv: list[str]) -> int:
    _limit_child()  # first, before anything of the file is read
    path, kind, classes = argv[0], argv[1], json.loads(argv[2])
    from dataclasses import asdict

    from src.detectors import inference

    try:
        info = inference.validate_here(path, kind, classes)
    except InvalidModel as error:
        print(json.dumps({"error": error.message}), flush=True)
        return 0
    except MemoryError:
        print(json.dumps({"error": f"Checking the model needed more than {CHILD_MEMORY_BYTES >> 30} GiB of memory; "
                                   "refused."}), flush=True)
        return 0
    except Exception as error:  # noqa: BLE001 - whatever the file made fail is its fault
        print(json.dumps({"error": f"This file could not be checked as a detector ({_short(error)})."}), flush=True)
        return 0
    print(json.dumps({"info": asdict(info)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
