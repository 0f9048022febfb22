"""Build every requested export of one dataset: decode once, write JPEGs, write labels, zip.

Memory holds one decoded frame and the (small) label metadata; images are streamed into
the zips (stored, not re-compressed: JPEG is already compressed).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import cv2

from src.vision.formats.ava import write_ava
from src.vision.formats.coco import write_coco
from src.vision.formats.cvat import write_cvat, write_cvat_images
from src.vision.formats.model import ExportSpec, LabeledFrame, image_name, with_attributes
from src.vision.formats.mot import write_mot
from src.vision.formats.yolo import write_yolo
from src.vision.types import PropagationResult
from src.vision.video import iter_frames

# cvat: CVAT for video 1.1; cvat_images: CVAT for images 1.1; mot: MOT Challenge sequence;
# yolo_track: the YOLO layout plus tracks/ (track id per label line). See docs/formats.md.
FORMATS = ("yolo", "yolo_track", "coco", "cvat", "cvat_images", "ava", "mot")
# formats that describe the delivered frames as a sequence in time: they also hold the frames
# without objects that `keep_empty=False` drops from the others (an absence is written there)
SEQUENCE_FORMATS = ("cvat", "mot")
JPEG_QUALITY = 92


def write_images(video_path: Path, frames: list[int], out: Path, progress: Callable[[int, int], None] | None = None) -> None:
    """Decode the video once and write the wanted frames as frame_NNNNNN.jpg."""
    out.mkdir(parents=True, exist_ok=True)
    wanted = sorted(set(frames))
    if not wanted:
        return
    cursor = 0
    for index, image in enumerate(iter_frames(video_path)):
        if index == wanted[cursor]:
            cv2.imwrite(str(out / image_name(index)), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            cursor += 1
            if progress:
                progress(cursor, len(wanted))
            if cursor == len(wanted):
                return
    raise ValueError(f"the video ended before frame {wanted[cursor]}")


def manifest(spec: ExportSpec, frames: list[LabeledFrame]) -> dict:
    counts = {s: sum(1 for f in frames if f.split == s) for s in ("train", "valid", "test")}
    return {
        "dataset_id": spec.dataset_id,
        "name": spec.dataset_name,
        "video": {"id": spec.video_id, "name": spec.video_name, "frames": spec.n_frames, "fps": spec.fps,
                  "width": spec.width, "height": spec.height},
        "classes": [{"id": i, "name": n} for i, n in enumerate(spec.classes)],
        "sampling": spec.sampling,
        "split": {**spec.split, "counts": counts},
        "formats": list(spec.formats),
        "frames": [
            {"frame": f.frame, "file": f.file_name, "split": f.split, "source": f.source,
             "confidence": round(f.confidence, 4),
             "objects": [_manifest_object(o) for o in f.objects]}
            for f in frames
        ],
        **({"attributes": [a.as_dict() for a in spec.attributes]} if spec.attributes else {}),
    }


def _manifest_object(o) -> dict:
    out = {**asdict(o), "box": [round(v, 2) for v in o.box], "confidence": round(o.confidence, 4)}
    if out["attributes"] is None:
        del out["attributes"]  # a class without attributes: the object reads as before
    return out


def _zip(target: Path, root: Path, extra: list[tuple[Path, str]], manifest_json: str) -> None:
    tmp = target.with_suffix(".zip.part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        zf.writestr("manifest.json", manifest_json)
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            zf.write(path, path.relative_to(root).as_posix())
        for source, name in extra:
            zf.write(source, name, compress_type=zipfile.ZIP_STORED)
    tmp.replace(target)  # a half-written zip is never visible under its final name


def build_exports(
    video_path: Path, result: PropagationResult, spec: ExportSpec, frames: list[LabeledFrame], out_dir: Path,
    *, progress: Callable[[int, int], None] | None = None, sequence: list[LabeledFrame] | None = None,
    images: Path | None = None,
) -> dict[str, Path]:
    """Write `<out_dir>/<format>.zip` for each format in `spec.formats`; returns their paths.

    `frames`: the exported frames; `sequence`: every delivered frame in time order, including
    those without objects that `keep_empty=False` left out of `frames` (default: `frames`);
    SEQUENCE_FORMATS are written over it. `images`: a folder that already holds the frames'
    images (written while the engine decoded, src.vision.delivery): the video is not decoded
    again; without it, the wanted frames are decoded here."""
    sequence = frames if sequence is None else sequence
    values = spec.track_values(result)  # every box carries its track's attribute values on its frame
    frames, sequence = with_attributes(frames, values), with_attributes(sequence, values)
    work = out_dir / "work"
    shutil.rmtree(work, ignore_errors=True)  # a re-run starts clean
    work.mkdir(parents=True)
    wanted = {f.frame for f in frames}
    if any(fmt in SEQUENCE_FORMATS for fmt in spec.formats):
        wanted |= {f.frame for f in sequence}
    if images is None:
        images = work / "images"
        write_images(video_path, sorted(wanted), images, progress)
    elif missing := sorted(f for f in wanted if not (images / image_name(f)).is_file()):
        raise ValueError(f"{len(missing)} frame image(s) missing from {images}, the first frame {missing[0]}")
    manifest_json = json.dumps(manifest(spec, frames), indent=1)
    (out_dir / "manifest.json").write_text(manifest_json)
    zips = {}
    for fmt in spec.formats:
        root = work / fmt
        root.mkdir(parents=True, exist_ok=True)
        if fmt in ("yolo", "yolo_track"):
            extra = write_yolo(root, spec, frames, images, tracks=fmt == "yolo_track")
        elif fmt == "coco":
            extra = write_coco(root, spec, frames, images)
        elif fmt == "cvat":
            extra = write_cvat(root, spec, sequence, images)
        elif fmt == "cvat_images":
            extra = write_cvat_images(root, spec, frames, images)
        elif fmt == "mot":
            extra = write_mot(root, spec, sequence, images)
        elif fmt == "ava":
            write_ava(root, spec, result)
            extra = []
        else:
            raise ValueError(f"unknown export format {fmt!r}")
        zips[fmt] = out_dir / f"{fmt}.zip"
        _zip(zips[fmt], root, extra, manifest_json)
    shutil.rmtree(work, ignore_errors=True)
    return zips
