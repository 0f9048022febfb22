"""Train and evaluate YOLO detectors on a master dataset folder (run in the worker's pool).

Offline by construction: the base is an architecture yaml shipped with ultralytics
(`yolov8n.yaml`) or a local checkpoint; `plots=False` (no font download), `amp=False` (the
AMP check downloads a hub checkpoint), `workers=0`; any download attempt raises OfflineDownload.
Progress (epoch, losses, mAP50-95 on the valid split) goes through a ProgressFile-like JSON.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

# ultralytics (and OpenCV, through src.detectors.inference) are imported by the functions that
# train or evaluate, in the worker: the web imports this module only for ARCHITECTURE.

ARCHITECTURE = re.compile(r"^(yolov8|yolov5|yolov9|yolov10|yolo11|yolo12)[nsmlx]?(-p[26])?\.yaml$")


def _write(path: Path, document: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document))
    os.replace(tmp, path)


def metrics_of(results: dict[str, Any]) -> dict[str, float]:
    """ultralytics' `metrics/...(B)` keys -> precision, recall, map50, map50_95."""
    pick = {"precision": "metrics/precision(B)", "recall": "metrics/recall(B)",
            "map50": "metrics/mAP50(B)", "map50_95": "metrics/mAP50-95(B)"}
    return {name: round(float(results.get(key, 0.0)), 5) for name, key in pick.items()}


def train(data_yaml: str, base: str, out_dir: str, *, epochs: int, imgsz: int, progress_path: str) -> dict[str, Any]:
    """Train; returns `{"weights": path, "metrics": {...}, "classes": [...], "device": str}`."""
    import torch

    from src.detectors.inference import ultralytics

    yolo = ultralytics().YOLO
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)  # ultralytics' import set OMP_NUM_THREADS=1
    device = 0 if torch.cuda.is_available() else "cpu"
    progress = Path(progress_path)
    model = yolo(base, task="detect")

    def on_fit_epoch_end(trainer) -> None:
        losses = {}
        try:
            items = trainer.label_loss_items(trainer.tloss, prefix="train")
            losses = {k.split("/")[-1]: round(float(v), 4) for k, v in (items or {}).items()}
        except Exception:  # noqa: BLE001 - progress is best effort
            pass
        epoch = min(trainer.epoch + 1, trainer.epochs)
        _write(progress, {"epoch": epoch, "epochs": trainer.epochs, "losses": losses,
                          "map50_95": round(float(trainer.metrics.get("metrics/mAP50-95(B)", 0.0)), 5),
                          "percent": round(100 * epoch / max(trainer.epochs, 1), 1)})

    model.add_callback("on_fit_epoch_end", on_fit_epoch_end)
    model.train(data=data_yaml, epochs=epochs, imgsz=imgsz, device=device, plots=False, amp=False, workers=0,
                project=out_dir, name="run", exist_ok=True, verbose=False, batch=8, seed=0, deterministic=False,
                val=True)
    trainer = model.trainer
    weights = Path(trainer.best) if Path(trainer.best).exists() else Path(trainer.last)
    names = model.names
    return {"weights": str(weights), "metrics": metrics_of(trainer.metrics or {}),
            "classes": [str(names[i]) for i in sorted(names)], "device": str(device)}


def evaluate(weights: str, data_yaml: str, *, imgsz: int, split: str = "val", out_dir: str | None = None) -> dict[str, float]:
    """A model's precision / recall / mAP on one split of a YOLO dataset (`out_dir`: ultralytics' run folder)."""
    import torch

    from src.detectors.inference import ultralytics

    yolo = ultralytics().YOLO
    model = yolo(weights, task="detect")
    device = 0 if torch.cuda.is_available() else "cpu"
    results = model.val(data=data_yaml, split=split, imgsz=imgsz, device=device, plots=False, workers=0,
                        verbose=False, batch=8, **({"project": out_dir, "name": "val", "exist_ok": True} if out_dir else {}))
    return metrics_of(results.results_dict)
