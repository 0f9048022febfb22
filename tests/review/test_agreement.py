"""Agreement figures on a hand-made case whose answer is worked out by hand."""

from __future__ import annotations

import pytest

from src.review.agreement import box_f1, by_pair, cohen_kappa, iou, match


def b(cls: str, x: float, y: float, w: float = 10, h: float = 10) -> dict:
    return {"class": cls, "box": [x, y, x + w, y + h]}


def test_iou_and_greedy_matching():
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    # a[0] overlaps b[0] (IoU 0.81..) and b[1] (IoU 0.66..): the best pair is taken first
    pairs = match([b("p", 0, 0)], [b("p", 1, 1), b("p", 0, 2)])
    assert [(i, j) for i, j, _ in pairs] == [(0, 0)]
    assert match([b("p", 0, 0)], [b("p", 5, 0)]) == []  # IoU 1/3 < 0.5


def test_hand_made_two_annotators():
    anna = {
        1: [b("person", 0, 0), b("car", 50, 50), b("person", 100, 100)],
        2: [b("person", 0, 0), b("car", 30, 30)],
        3: [],
        4: [b("car", 0, 0)],  # rob did not see frame 4: not compared
    }
    rob = {
        1: [b("person", 1, 1), b("person", 50, 50)],  # 2 matches (one with another class), anna has an extra box
        2: [b("person", 0, 0), b("car", 31, 30), b("car", 70, 70)],  # 2 matches, rob has an extra box
        3: [],  # both empty: full agreement
    }
    assert box_f1(anna[1], rob[1]) == pytest.approx(2 * 2 / 5)
    assert box_f1(anna[2], rob[2]) == pytest.approx(2 * 2 / 5)
    assert box_f1(anna[3], rob[3]) == 1.0
    # matched classes: (person, person), (car, person), (person, person), (car, car)
    # observed 3/4; anna: person 2, car 2; rob: person 3, car 1 -> expected (2*3 + 2*1)/16 = 0.5
    # kappa = (0.75 - 0.5) / (1 - 0.5) = 0.5
    (row,) = by_pair({"anna": anna, "rob": rob})
    assert row == {"a": "anna", "b": "rob", "frames": 3, "box_f1": pytest.approx((0.8 + 0.8 + 1.0) / 3, abs=1e-4),
                   "matched_boxes": 4, "label_kappa": 0.5}


def test_kappa_edge_cases():
    assert cohen_kappa([]) is None
    assert cohen_kappa([("a", "a"), ("a", "a")]) == 1.0
    assert cohen_kappa([("a", "b"), ("b", "a")]) == pytest.approx(-1.0)


def a(x: float, action: list[str], colour: str, cls: str = "person") -> dict:
    return {**b(cls, x, 0), "attributes": {"action": action, "colour": colour}}


def test_attribute_kappa_per_attribute_and_per_value_on_a_hand_made_case():
    from src.review.agreement import pair_agreement

    anna = {1: [a(0, ["walk"], "red"), a(20, ["walk", "talk"], "red")],
            2: [a(0, ["stand"], "blue"), a(20, ["stand"], "blue"), a(40, ["sit"], "red", cls="car")]}
    rob = {1: [a(0, ["walk"], "red"), a(20, ["walk"], "blue")],
           2: [a(0, ["stand", "talk"], "blue"), a(20, ["walk"], "blue"), a(40, ["sit"], "blue", cls="person")]}
    row = pair_agreement(anna, rob)
    assert row["matched_boxes"] == 5
    # the car/person pair is the label kappa's business: its values are not compared.
    # colour: (r,r) (r,b) (b,b) (b,b): observed 3/4; anna r2 b2, rob r1 b3 -> expected 8/16; kappa 0.5
    # walk: (T,T) (T,T) (F,F) (F,T): observed 3/4; anna T2 F2, rob T3 F1 -> expected 8/16; kappa 0.5
    # talk: (F,F) (T,F) (F,T) (F,F): observed 2/4; anna T1 F3, rob T1 F3 -> expected 10/16; kappa -1/3
    # stand: (F,F) (F,F) (T,T) (T,F): observed 3/4; anna T2 F2, rob T1 F3 -> expected 8/16; kappa 0.5
    # sit: only on the skipped pair: no figure
    assert row["attribute_kappa"] == {"action:stand": 0.5, "action:talk": pytest.approx(-1 / 3, abs=1e-4),
                                      "action:walk": 0.5, "colour": 0.5}


def test_attribute_kappa_counts_a_missing_value_as_a_disagreement_and_gates_auto_accept():
    from src.review.agreement import attribute_kappas
    from src.review.service import meets

    x = {"class": "p", "box": [0, 0, 1, 1], "attributes": {"mood": "calm"}}
    y = {"class": "p", "box": [0, 0, 1, 1]}
    z = {"class": "p", "box": [0, 0, 1, 1], "attributes": {"mood": "angry"}}
    assert attribute_kappas([(x, x), (y, y)]) == {"mood": 1.0}
    assert attribute_kappas([(x, y), (y, x), (z, z)])["mood"] < 0.5
    assert attribute_kappas([(y, y)]) == {}
    good = {"box_f1": 0.9, "label_kappa": 1.0}
    assert meets(good, 0.8) and meets({**good, "attribute_kappa": {"mood": 0.85}}, 0.8)
    assert not meets({**good, "attribute_kappa": {"mood": 0.85, "action:walk": 0.2}}, 0.8)
