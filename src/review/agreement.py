"""Agreement between two annotators (QC), pure functions.

Boxes are `{"class": str, "box": [x1, y1, x2, y2]}` in pixels. On one frame the two sets are
matched greedily by IoU (highest first, IoU >= 0.5, one-to-one): box agreement is the F1 of
that matching, 2·matched / (n_a + n_b) (1.0 when both saw nothing). Label agreement is
Cohen's kappa over the classes of the matched pairs, pooled over frames.
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


def pair_agreement(a: Mapping[int, Sequence[Box]], b: Mapping[int, Sequence[Box]]) -> dict[str, Any]:
    """Two annotators over the frames both annotated: mean per-frame box F1, and label kappa."""
    frames = sorted(set(a) & set(b))
    f1s, labels = [], []
    for f in frames:
        f1s.append(box_f1(a[f], b[f]))
        labels += [(a[f][i]["class"], b[f][j]["class"]) for i, j, _ in match(a[f], b[f])]
    return {
        "frames": len(frames),
        "box_f1": round(sum(f1s) / len(f1s), 4) if f1s else None,
        "matched_boxes": len(labels),
        "label_kappa": None if not labels else round(cohen_kappa(labels), 4),
    }


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
