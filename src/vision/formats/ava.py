"""AVA v2.x CSV (`annotations.csv`) and its label map (`label_map.pbtxt`).

As AVA's own files: no header, one row per box,
`video_id,timestamp,x1,y1,x2,y2,action_id,person_id`, where `timestamp` is whole seconds
from the start of the video (written `%04d`, as AVA writes `0902`), the corners are
normalised to [0, 1] with 3 decimals, `action_id` is the 1-based class id of `label_map.pbtxt`
and `person_id` is the track id.

Frames become rows at 1 Hz, AVA's rate: the row of second `t` holds the boxes of the video
frame nearest `t` (frame `floor(t * fps + 0.5)`), for every `t` while that frame exists.
`ava_rate` below 1 keeps every `round(1 / ava_rate)`-th second; above 1 the rows stay at 1 Hz
(AVA's timestamps are whole seconds). Rows come from the engine's boxes on every frame of the
video, not only the delivered ones (the AVA zip holds no images).

With an action attribute (`ExportSpec.action_attribute`: the first multi / select attribute
of the class "person", else of any class), the actions are that attribute's values: one row
per action a person does at the timestamp (a multi value of two actions: two rows with the
same box), `action_id` the 1-based position of the value in the attribute's list, which is
what `label_map.pbtxt` lists; boxes of other classes, and boxes without an action at that
second, give no row (AVA lists only boxes with actions). Without attributes the class is the
action, as before.
"""

from __future__ import annotations

import csv
from pathlib import Path

from src.vision.formats.model import ExportSpec, LabeledObject, box_source
from src.vision.formats.provenance import entry, write_provenance
from src.vision.types import PropagationResult


def seconds_step(ava_rate: float) -> int:
    return max(1, round(1.0 / ava_rate)) if ava_rate > 0 else 1


def _actions(spec: ExportSpec, values, track, frame: int) -> list[str]:
    """The actions of `track` on `frame`: its class (no action attribute), or the values of the
    action attribute (none for a class without it)."""
    action = spec.action_attribute()
    if action is None:
        return [track.class_name]
    if track.class_name != action.class_name or int(track.track_id) not in values:
        return []
    value = values[int(track.track_id)].at(frame)[action.name]
    return list(value) if isinstance(value, list) else [value] if value in action.values else []


def action_names(spec: ExportSpec) -> list[str]:
    """The names of `label_map.pbtxt`, in id order."""
    action = spec.action_attribute()
    return list(action.values) if action is not None else list(spec.classes)


def ava_rows(spec: ExportSpec, result: PropagationResult):
    """(row, provenance entry) for every box and action at each sampled second."""
    action_ids = {name: i + 1 for i, name in enumerate(action_names(spec))}
    class_ids = {name: i for i, name in enumerate(spec.classes)}
    values = spec.track_values(result)
    step = seconds_step(spec.ava_rate)
    second = 0
    while True:
        frame = int(second * spec.fps + 0.5)
        if frame >= spec.n_frames or spec.fps <= 0:
            return
        for track in sorted(result.tracks, key=lambda tr: tr.track_id):
            if not track.present[frame]:
                continue
            x1, y1, x2, y2 = (float(v) for v in track.boxes[frame])
            corners = [min(1.0, max(0.0, v)) for v in (x1 / spec.width, y1 / spec.height, x2 / spec.width, y2 / spec.height)]
            obj = LabeledObject(int(track.track_id), class_ids[track.class_name], (x1, y1, x2, y2),
                                float(track.confidence[frame]),
                                box_source(int(track.source[frame]), reviewed=frame in spec.reviewed_frames))
            for action in _actions(spec, values, track, frame):
                row = [spec.video_id, f"{second:04d}", *(f"{v:.3f}" for v in corners),
                       action_ids[action], int(track.track_id)]
                yield row, obj, frame
        second += step


def label_map(classes: list[str]) -> str:
    """AVA's pbtxt layout (`item { name: "..." id: N }`, two-space indent), 1-based ids."""
    def quoted(name: str) -> str:
        return name.replace("\\", "\\\\").replace('"', '\\"')

    return "".join(f'item {{\n  name: "{quoted(name)}"\n  id: {i + 1}\n}}\n' for i, name in enumerate(classes))


def write_ava(root: Path, spec: ExportSpec, result: PropagationResult) -> None:
    root.mkdir(parents=True, exist_ok=True)
    provenance = []
    with (root / "annotations.csv").open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        for index, (row, obj, frame) in enumerate(ava_rows(spec, result)):
            writer.writerow(row)
            provenance.append(entry(frame, obj, row=index, timestamp=int(row[1])))
    (root / "label_map.pbtxt").write_text(label_map(action_names(spec)))
    write_provenance(root, provenance)
