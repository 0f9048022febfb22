"""Agreement between two annotators (QC), pure functions.

Boxes are `{"class": str, "box": [x1, y1, x2, y2]}` in pixels. On one frame the two sets are
matched greedily by IoU (highest first, IoU >= 0.5, one-to-one): box agreement is the F1 of
that matching, 2·matched / (n_a + n_b) (1.0 when both saw nothing). Label agreement is
Cohen's kappa over the classes of the matched pairs, pooled over frames.

Boxes may carry attribute values (`"attributes": {"action": ["walk"], "colour": "red"}`,
docs/attributes.md). Attribute agreement is Cohen's kappa per attribute over the matched pairs
of the same class (a box without the attribute counts as "no value"); a multi-label attribute
(a list) is one yes/no kappa per value, keyed `"<attribute>:<value>"`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

IOU_THRESHOLD = 0.5
Box = Mapping[str, Any]


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(a: Sequence[Box], b: Sequence[Box], threshold: float = IOU_THRESHOLD) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching by IoU: [(index in a, index in b, IoU)], best first."""
    candidates = sorted(((iou(x["box"], y["box"]), i, j) for i, x in enumerate(a) for j, y in enumerate(b)), reverse=True)
    used_a, used_b, pairs = set(), set(), []
    for value, i, j in candidates:
        if value < threshold:
            break
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j, value))
    return pairs


def box_f1(a: Sequence[Box], b: Sequence[Box], threshold: float = IOU_THRESHOLD) -> float:
    if not a and not b:
        return 1.0
    return 2 * len(match(a, b, threshold)) / (len(a) + len(b))


def cohen_kappa(pairs: Iterable[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items; None without items."""
    pairs = list(pairs)
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(x == y for x, y in pairs) / n
    count_a, count_b = Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    expected = sum(count_a[label] * count_b[label] for label in count_a) / (n * n)
    if expected == 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - expected) / (1 - expected)


NO_VALUE = "\u2205"  # a box without a value of the attribute


def attribute_kappas(pairs: Iterable[tuple[Box, Box]]) -> dict[str, float | None]:
    """Cohen's kappa per attribute (multi-label: per value) over matched pairs of boxes of the
    same class: `{"colour": 0.5, "action:walk": 1.0, ...}`; {} when no box has attributes."""
    same = [(x.get("attributes") or {}, y.get("attributes") or {}) for x, y in pairs
            if x.get("class") == y.get("class")]  # a class mix-up is the label kappa's business
    names = sorted({name for va, vb in same for name in (*va, *vb)})
    # the values of each multi-label attribute that anyone gave, over all pairs
    choices = {name: sorted({v for va, vb in same for side in (va, vb) if isinstance(side.get(name), list)
                             for v in side[name]}, key=str) for name in names}
    multi = {name for va, vb in same for name in names
             if isinstance(va.get(name), list) or isinstance(vb.get(name), list)}
    ratings: dict[str, list[tuple[str, str]]] = {}
    for va, vb in same:
        for name in names:
            p, q = va.get(name), vb.get(name)
            if name in multi:
                for value in choices[name]:
                    ratings.setdefault(f"{name}:{value}", []).append((str(value in (p or [])), str(value in (q or []))))
            elif p is not None or q is not None:
                ratings.setdefault(name, []).append((NO_VALUE if p is None else str(p), NO_VALUE if q is None else str(q)))
    out = {}
    for key, labels in sorted(ratings.items()):
        kappa = cohen_kappa(labels)
        out[key] = None if kappa is None else round(kappa, 4)
    return out


def pair_agreement(a: Mapping[int, Sequence[Box]], b: Mapping[int, Sequence[Box]]) -> dict[str, Any]:
    """Two annotators over the frames both annotated: mean per-frame box F1, label kappa and,
    when boxes carry attributes, `attribute_kappa` (`attribute_kappas`)."""
    frames = sorted(set(a) & set(b))
    f1s, labels, matched = [], [], []
    for f in frames:
        f1s.append(box_f1(a[f], b[f]))
        pairs = match(a[f], b[f])
        labels += [(a[f][i]["class"], b[f][j]["class"]) for i, j, _ in pairs]
        matched += [(a[f][i], b[f][j]) for i, j, _ in pairs]
    row = {
        "frames": len(frames),
        "box_f1": round(sum(f1s) / len(f1s), 4) if f1s else None,
        "matched_boxes": len(labels),
        "label_kappa": None if not labels else round(cohen_kappa(labels), 4),
    }
    kappas = attribute_kappas(matched)
    if kappas:
        row["attribute_kappa"] = kappas
    return row


def by_pair(annotations: Mapping[str, Mapping[int, Sequence[Box]]]) -> list[dict[str, Any]]:
    """{annotator: {frame: boxes}} -> one row per pair of annotators who share frames."""
    names = sorted(annotations)
    rows = []
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            row = pair_agreement(annotations[x], annotations[y])
            if row["frames"]:
                rows.append({"a": x, "b": y, **row})
    return rows
