"""`forge propagate VIDEO --seeds SEEDS.json --out OUT.json [--budget 0.05] [--tracker-model DIR] [--quiet]`

SEEDS.json: {"keyframes": {"0": [{"track_id": 1, "class": "person", "box": [x1, y1, x2, y2]},
                                {"track_id": 2, "gone": true}]}}
  frame indices 0-based (strings or numbers), boxes in full-resolution pixels, corners;
  {"track_id": N, "gone": true} ends object N from that keyframe on. A box partly outside the
  frame (an object entering at the edge) is clipped to it; one wholly outside is refused.
OUT.json: {"video": {"frames", "fps", "width", "height"},
           "frames": [{"frame": i, "objects": [{"track_id", "class", "box", "confidence"}]}],
           "hard_frames": [i, ...], "engine": "nanotrack-v2" | "lk-ncc", "timing": {"seconds", "fps"}}
--tracker-model DIR (default: $TRACKER_MODEL_DIR): the learned tracker's files; without them
  the built-in LK+NCC tracker runs (and, when DIR was given, one line on stderr says why).
Bad input exits with status 2 and one line on stderr.

`forge tracker download [DIR] [--base-url URL]` fetches the learned tracker's files into DIR
and checks their sha256; a file that does not match is deleted and the command fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from src.vision.propagate import SeedError, propagate, validate_keyframes
from src.vision.types import SeedObject
from src.vision.video import VideoProbeError, probe


class InputError(ValueError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise InputError(f"forge propagate: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="forge propagate", description="Propagate keyframe boxes through a video.")
    p.add_argument("video")
    p.add_argument("--seeds", required=True, help="keyframes JSON")
    p.add_argument("--out", required=True, help="output JSON")
    p.add_argument("--budget", type=float, default=0.05, help="hard frames: share (<1) or count (>=1)")
    p.add_argument("--workers", type=int, default=None, help="passes run at once (default: one per core)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--tracker-model", default=os.environ.get("TRACKER_MODEL_DIR") or None,
                   help="folder with the learned tracker's files (default: $TRACKER_MODEL_DIR)")
    return p


def parse_seeds(doc: object) -> dict[int, list[SeedObject]]:
    """SEEDS.json document -> {frame: [SeedObject]}; raises InputError with a clear message."""
    if not isinstance(doc, dict) or not isinstance(doc.get("keyframes"), dict):
        raise InputError('seeds: expected an object {"keyframes": {"<frame>": [...]}}')
    out: dict[int, list[SeedObject]] = {}
    for key, objs in doc["keyframes"].items():
        try:
            f = int(key)
        except (TypeError, ValueError):
            raise InputError(f"seeds: keyframe {key!r} is not a frame index") from None
        if str(key).strip() != str(f) or f < 0:
            raise InputError(f"seeds: keyframe {key!r} is not a frame index >= 0")
        if f in out:
            raise InputError(f"seeds: keyframe {f} given twice")
        if not isinstance(objs, list):
            raise InputError(f"seeds: keyframe {f}: expected a list of objects")
        out[f] = []
        for o in objs:
            if not isinstance(o, dict) or isinstance(o.get("track_id"), bool) or not isinstance(o.get("track_id"), int):
                raise InputError(f"seeds: keyframe {f}: every object needs an integer track_id")
            tid = o["track_id"]
            if o.get("gone") is True:
                out[f].append(SeedObject(tid, str(o.get("class", "")), None, gone=True))
                continue
            cls = o.get("class")
            if not isinstance(cls, str) or not cls:
                raise InputError(f"seeds: keyframe {f}, track_id {tid}: missing class")
            box = o.get("box")
            if (
                not isinstance(box, list)
                or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)
            ):
                raise InputError(f"seeds: keyframe {f}, track_id {tid}: box must be [x1, y1, x2, y2] numbers")
            out[f].append(SeedObject(tid, cls, np.array(box, np.float32)))
    if not out:
        raise InputError("seeds: no keyframes")
    return out


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    seeds_path = Path(args.seeds)
    if not seeds_path.is_file():
        raise InputError(f"seeds: {seeds_path}: no such file")
    try:
        doc = json.loads(seeds_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"seeds: {seeds_path}: malformed JSON ({exc})") from None
    keyframes = parse_seeds(doc)
    if not (args.budget >= 0 and math.isfinite(args.budget)):
        raise InputError("--budget must be a number >= 0")
    if args.workers is not None and args.workers < 1:
        raise InputError("--workers must be >= 1")
    out_path = Path(args.out)
    if not out_path.parent.is_dir():
        raise InputError(f"--out: directory {out_path.parent} does not exist")
    info = probe(args.video)
    keyframes = validate_keyframes(keyframes, info)  # boxes partly outside the frame are clipped

    bar = progress = None
    if not args.quiet and info.frames >= 300:
        from tqdm import tqdm

        bar = tqdm(total=info.frames, unit="frame", desc="propagate", file=sys.stderr)

        def progress(done: int, total: int) -> None:
            bar.n = done
            if done == total or done % 25 == 0:
                bar.refresh()

    try:
        result = propagate(args.video, keyframes, budget=args.budget, progress=progress, workers=args.workers, info=info,
                           tracker_model=args.tracker_model)
    finally:
        if bar is not None:
            bar.close()
    if args.tracker_model and result.engine_note:
        print(f"forge propagate: the learned tracker was not used ({result.engine_note}); "
              f"the built-in {result.engine} tracker ran", file=sys.stderr)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text(json.dumps(result.to_json(), separators=(",", ":")))
    tmp.replace(out_path)
    return 0


def main(argv: list[str]) -> int:
    """Entry point of `forge propagate`; returns the exit status (0 ok, 2 bad input, 1 failure)."""
    try:
        return _run(list(argv))
    except (InputError, SeedError, VideoProbeError) as exc:
        print(f"forge propagate: {exc}" if not str(exc).startswith("forge propagate") else str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("forge propagate: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        print(f"forge propagate: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def download_models(model_dir: str | Path, base_url: str | None = None, timeout: float = 60.0) -> list[str]:
    """Fetch the learned tracker's files into ``model_dir`` (from their public addresses, or
    ``base_url`` + file name) and check each one's sha256; a file already there with the right
    hash is kept. Returns one line per file; raises InputError for a failed fetch or a file
    whose hash does not match (deleted, never left in place)."""
    import urllib.error
    import urllib.request

    from src.vision.nanotrack import MODEL_SHA256, MODEL_URLS, sha256_of

    d = Path(model_dir)
    d.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, want in MODEL_SHA256.items():
        target = d / name
        if target.is_file() and sha256_of(target) == want:
            lines.append(f"{name}: already there, sha256 ok")
            continue
        url = base_url.rstrip("/") + "/" + name if base_url else MODEL_URLS[name]
        part = target.with_name(name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            part.unlink(missing_ok=True)
            why = f"HTTP {exc.code} {exc.reason}" if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", exc)
            raise InputError(f"forge tracker download: {url}: {why}") from None
        got = sha256_of(part)
        if got != want:
            part.unlink(missing_ok=True)
            raise InputError(f"forge tracker download: {name} from {url} is corrupted (sha256 {got}, expected {want}); nothing kept")
        part.replace(target)
        lines.append(f"{name}: downloaded, sha256 ok")
    return lines


def tracker_main(argv: list[str], default_dir: str | Path | None = None) -> int:
    """Entry point of `forge tracker download [DIR]`; returns the exit status (0 ok, 2 failed)."""
    p = _Parser(prog="forge tracker", description="The learned tracker's model files.")
    sub = p.add_subparsers(dest="command", required=True)
    dl = sub.add_parser("download", help="fetch the model files and check their sha256")
    dl.add_argument("dir", nargs="?", default=None, help="target folder (default: TRACKER_MODEL_DIR)")
    dl.add_argument("--base-url", default=None, help="fetch <URL>/<file name> instead of the public addresses")
    try:
        args = p.parse_args(list(argv))
        target = args.dir or os.environ.get("TRACKER_MODEL_DIR") or default_dir
        if not target:
            raise InputError("forge tracker download: no folder given and TRACKER_MODEL_DIR is not set")
        for line in download_models(target, args.base_url):
            print(line)
        print(f"model files in {Path(target).resolve()} (set TRACKER_MODEL_DIR to this folder)")
        return 0
    except InputError as exc:
        print(str(exc).replace("forge propagate:", "forge tracker:"), file=sys.stderr)
        return 2
