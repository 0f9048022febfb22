"""Attributes of tracks (CVAT-style, AVA actions): their schemas, value checks, and the values
every box of a track carries, worked out from the track's keyframes. Pure functions.

A schema (`AttributeSpec`) belongs to one class. Kinds:

| kind | a value is | `values` |
|---|---|---|
| select | one of `values` (a string) | the choices |
| multi | a list of distinct strings of `values` (possibly empty) | the choices |
| checkbox | true / false | unused (empty) |
| number | a number in [min, max] | `[min, max, step]` (optional) |
| text | a string | unused (empty) |

Values on a keyframe object: `{"attributes": {"action": ["walk"]}}`, keyed by attribute name.
`TrackValues.at` answers the values of a track on any frame: a **mutable** attribute has the value
of the latest keyframe at or before the frame that sets it (frames before the track's first
keyframe take that keyframe's value, as the tracker carries the box backwards; until an
attribute is first set, its default); an **immutable** one has one
value for the whole track (the latest keyframe that sets it).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

KINDS = ("select", "multi", "checkbox", "number", "text")
MAX_NAME = 64
MAX_VALUES = 200
MAX_TEXT = 500
# names the exports already give every box (CVAT, COCO attributes): not available
RESERVED = ("source", "confidence", "track_id", "occluded", "outside", "keyframe")


class InvalidAttribute(ValueError):
    """A schema or a value that cannot be accepted; the message says why."""


@dataclass(frozen=True)
class AttributeSpec:
    class_name: str
    name: str
    kind: str  # one of KINDS
    values: tuple[Any, ...] = ()
    default: Any = None
    mutable: bool = True

    def default_value(self) -> Any:
        """`default`, or the kind's own: the first choice (select), nothing (multi), false,
        the minimum or 0 (number), "" (text)."""
        if self.default is not None:
            return list(self.default) if self.kind == "multi" else self.default
        if self.kind == "select":
            return self.values[0] if self.values else ""
        if self.kind == "multi":
            return []
        if self.kind == "checkbox":
            return False
        if self.kind == "number":
            return self.values[0] if self.values else 0
        return ""

    def as_dict(self) -> dict[str, Any]:
        return {"class": self.class_name, "name": self.name, "kind": self.kind, "values": list(self.values),
                "default": self.default_value(), "mutable": self.mutable}


def clean_spec(class_name: str, name: str, kind: str, values: Iterable[Any] | None, default: Any,
               mutable: bool) -> AttributeSpec:
    """A checked schema (names trimmed, choices distinct, default valid); InvalidAttribute otherwise."""
    name = (name or "").strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise InvalidAttribute(f"An attribute name must be 1 to {MAX_NAME} characters.")
    if name.casefold() in RESERVED:
        raise InvalidAttribute(f"'{name}' is a name the exports already use on every box; choose another.")
    if kind not in KINDS:
        raise InvalidAttribute(f"Unknown attribute kind {_show(kind)}; use one of {', '.join(KINDS)}.")
    raw = list(values or [])
    if len(raw) > MAX_VALUES:
        raise InvalidAttribute(f"An attribute has at most {MAX_VALUES} values.")
    if kind in ("select", "multi"):
        choices = []
        for value in raw:
            if not isinstance(value, str) or not 1 <= len(value.strip()) <= MAX_NAME:
                raise InvalidAttribute(f"Attribute '{name}': each value is a name of 1 to {MAX_NAME} characters.")
            if value.strip() in choices:
                raise InvalidAttribute(f"Attribute '{name}': the value '{value.strip()}' is listed twice.")
            choices.append(value.strip())
        if not choices:
            raise InvalidAttribute(f"Attribute '{name}': a {kind} attribute needs its list of values.")
        clean_values: tuple[Any, ...] = tuple(choices)
    elif kind == "number":
        if raw and (len(raw) not in (2, 3) or not all(_is_number(v) for v in raw) or raw[0] > raw[1]
                    or (len(raw) == 3 and raw[2] <= 0)):
            raise InvalidAttribute(f"Attribute '{name}': a number attribute's values are [min, max] or [min, max, step].")
        clean_values = tuple(raw)
    else:
        if raw:
            raise InvalidAttribute(f"Attribute '{name}': a {kind} attribute has no list of values.")
        clean_values = ()
    spec = AttributeSpec(class_name, name, kind, clean_values, None, bool(mutable))
    if default is not None:
        spec = AttributeSpec(class_name, name, kind, clean_values, check_value(spec, default), bool(mutable))
    return spec


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _show(value: Any) -> str:
    """A value as a message quotes it: at most 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_value(spec: AttributeSpec, value: Any) -> Any:
    """The value in its stored form (multi: the choices in schema order), or InvalidAttribute."""
    where = f"attribute '{spec.name}' ({spec.kind})"
    if spec.kind == "select":
        if value not in spec.values:
            raise InvalidAttribute(f"{where}: {_show(value)} is not one of {', '.join(spec.values)}.")
        return value
    if spec.kind == "multi":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or any(v not in spec.values for v in value):
            raise InvalidAttribute(f"{where}: give a list of values among {', '.join(spec.values)}, got {_show(value)}.")
        return [v for v in spec.values if v in value]
    if spec.kind == "checkbox":
        if not isinstance(value, bool):
            raise InvalidAttribute(f"{where}: the value is true or false, got {_show(value)}.")
        return value
    if spec.kind == "number":
        if not _is_number(value):
            raise InvalidAttribute(f"{where}: the value is a number, got {_show(value)}.")
        if spec.values and not spec.values[0] <= value <= spec.values[1]:
            raise InvalidAttribute(f"{where}: {value} is outside [{spec.values[0]}, {spec.values[1]}].")
        return value
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise InvalidAttribute(f"{where}: the value is a text of at most {MAX_TEXT} characters, got {_show(value)}.")
    return value


def check_values(specs: Iterable[AttributeSpec], class_name: str, values: Mapping[str, Any] | None) -> dict[str, Any]:
    """The checked values of one box of `class_name`; unknown names are refused."""
    own = {s.name: s for s in specs if s.class_name == class_name}
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise InvalidAttribute('"attributes" is an object of attribute name -> value, e.g. {"action": ["walk"]}.')
    out = {}
    for name, value in values.items():
        if name not in own:
            known = ", ".join(own) or "none"
            raise InvalidAttribute(f"The class '{class_name}' has no attribute {_show(name)} (its attributes: {known}).")
        out[name] = check_value(own[name], value)
    return out


class TrackValues:
    """The attribute values of one track on any frame, from its keyframes.

    `keyframes`: `[(frame, {name: value})]` of the keyframes where the track has a box (the
    values that keyframe sets; missing names change nothing); `specs`: the track's class's
    attributes."""

    def __init__(self, specs: Iterable[AttributeSpec], keyframes: Iterable[tuple[int, Mapping[str, Any]]]):
        self.specs = list(specs)
        ordered = sorted(keyframes, key=lambda item: item[0])
        self._first = ordered[0][0] if ordered else 0
        self._changes: dict[str, tuple[list[int], list[Any]]] = {}
        self._fixed: dict[str, Any] = {}
        for spec in self.specs:
            sets = [(f, values[spec.name]) for f, values in ordered if spec.name in values]
            if not spec.mutable:
                self._fixed[spec.name] = sets[-1][1] if sets else spec.default_value()
            elif sets:
                self._changes[spec.name] = ([f for f, _ in sets], [v for _, v in sets])

    def at(self, frame: int) -> dict[str, Any]:
        """`{name: value}` of every attribute of the class on `frame` (lists are fresh copies)."""
        out = {}
        for spec in self.specs:
            if spec.name in self._fixed:
                value = self._fixed[spec.name]
            elif spec.name in self._changes:
                frames, values = self._changes[spec.name]
                index = bisect.bisect_right(frames, frame) - 1
                if index >= 0:
                    value = values[index]
                else:  # before the first keyframe setting it: that value only if it is the track's first keyframe
                    value = values[0] if frames[0] == self._first else spec.default_value()
            else:
                value = spec.default_value()
            out[spec.name] = list(value) if isinstance(value, list) else value
        return out


def resolve_tracks(
    specs: Iterable[AttributeSpec], track_classes: Mapping[int, str],
    keyframes: Mapping[int, Mapping[int, Mapping[str, Any]]],
) -> dict[int, TrackValues]:
    """`{track_id: TrackValues}` for the tracks whose class has attributes.

    `track_classes`: `{track_id: class name}`; `keyframes`: `{frame: {track_id: {name: value}}}`,
    one entry per box of a keyframe (an empty dict: the box sets nothing)."""
    specs = list(specs)
    out = {}
    for track_id, class_name in track_classes.items():
        own = [s for s in specs if s.class_name == class_name]
        if not own:
            continue
        entries = [(f, boxes[track_id]) for f, boxes in keyframes.items() if track_id in boxes]
        out[track_id] = TrackValues(own, entries)
    return out


def keyframe_values(seeds: Mapping[int, Iterable[Mapping[str, Any]]]) -> dict[int, dict[int, dict[str, Any]]]:
    """`{frame: [{"track_id", "class", "box", "attributes"?} | {"track_id", "gone"}]}` (the
    engine's seeds) -> `{frame: {track_id: {name: value}}}` for the boxes."""
    return {
        int(frame): {int(o["track_id"]): dict(o.get("attributes") or {}) for o in objects if not o.get("gone")}
        for frame, objects in seeds.items()
    }
