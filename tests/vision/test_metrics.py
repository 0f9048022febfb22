import numpy as np

from src.vision.metrics import auroc, iou, load_otb, success_auc


def test_iou_basic():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    assert np.allclose(iou(a, b), [1.0, 50 / 150, 0.0])
    assert iou(np.full(4, np.nan), a[0])[0] == 0.0


def test_auroc_and_success():
    assert auroc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert auroc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    assert auroc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5
    assert success_auc(np.ones(5)) > 0.95 and success_auc(np.zeros(5)) == 0.0


def test_load_otb_separators(tmp_path):
    for sep in [",", "\t", " "]:
        p = tmp_path / "gt.txt"
        p.write_text(sep.join(["11", "21", "5", "6"]) + "\n" + sep.join(["NaN", "NaN", "NaN", "NaN"]) + "\n")
        b = load_otb(p)
        assert np.allclose(b[0], [10, 20, 15, 26]) and np.isnan(b[1]).all()
