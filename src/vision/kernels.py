"""Compiled (numba) inner loops of the tracker.

What runs here is the arithmetic between two OpenCV calls on a few dozen points: in NumPy it
was some forty small array operations per object and frame, a quarter of a tracking step spent
in call overhead. Each function is the plain-Python reading of what it computes; numba
compiles it once per machine (``cache=True`` keeps the machine code beside this file) and it
releases the GIL, so tracking threads run it in parallel too.
"""

from __future__ import annotations

import numba
import numpy as np

RING_FB_PX = 0.5  # a ring point counts when its forward-backward error is at most this


@numba.njit(cache=True, nogil=True)
def lk_motion(q0, q1, st1, st2, q0b, ng, gx, gy, g, inlier_px):
    """The box's motion from LK point tracks in a crop.

    ``q0`` (n, 2) float32: points in the previous crop (``ng`` grid points inside the box,
    then ring points just outside it); ``q1``: where LK found them in the current crop;
    ``q0b``: where LK tracked ``q1`` back to; ``st1``, ``st2``: LK's status of each way.
    ``gx``, ``gy``: crop pixels per frame pixel; ``g``: normalized pixels per frame pixel;
    ``inlier_px``: a point moves with the object when within this many normalized pixels of
    its median motion.

    Returns (found, dx, dy, scale, median forward-backward error of the good points, share
    of good grid points); found is False with fewer than 4 good points. Good: tracked both
    ways with a forward-backward error at most the median (or 0.5 crop px). Translation is
    the median motion of the good points; scale the median ratio of pairwise distances among
    the good points that move with the object (within ``inlier_px`` of the median motion) and,
    when the ring shows the background moving otherwise, not with the background.
    """
    n = q0.shape[0]
    fb = np.empty(n, np.float32)
    ok = np.empty(n, np.bool_)
    for k in range(n):
        ex = q0[k, 0] - q0b[k, 0]
        ey = q0[k, 1] - q0b[k, 1]
        fb[k] = np.sqrt(ex * ex + ey * ey)
        ok[k] = st1[k] == 1 and st2[k] == 1 and np.isfinite(fb[k])
    if ok[:ng].sum() < 4:
        return False, 0.0, 0.0, 1.0, 10.0, 0.0
    thr = max(float(np.median(fb[:ng][ok[:ng]])), 0.5)
    good = ok[:ng] & (fb[:ng] <= thr)
    n_good = good.sum()
    if n_good < 4:
        return False, 0.0, 0.0, 1.0, 10.0, 0.0
    a = np.empty((ng, 2))  # points before and after, in frame pixels
    c = np.empty((ng, 2))
    for k in range(ng):
        a[k, 0], a[k, 1] = q0[k, 0] / gx, q0[k, 1] / gy
        c[k, 0], c[k, 1] = q1[k, 0] / gx, q1[k, 1] / gy
    d = c - a
    dx = np.median(d[:, 0][good])
    dy = np.median(d[:, 1][good])
    # scale only from points that move with the object: a static background point inside
    # the box would otherwise read as the box stretching
    near = good & (np.maximum(np.abs(d[:, 0] - dx), np.abs(d[:, 1] - dy)) * g <= inlier_px)
    inl = near if near.sum() >= 4 else good
    ring = ok[ng:] & (fb[ng:] <= RING_FB_PX)
    if ring.sum() >= 4:
        # ... and, when the background around the box moves otherwise, only points that do
        # not move with it: a slow object's box holds background points whose motion is
        # within inlier_px of the object's, and they read as the box growing
        bgx = np.median((q1[ng:, 0] - q0[ng:, 0])[ring] / gx)
        bgy = np.median((q1[ng:, 1] - q0[ng:, 1])[ring] / gy)
        own = inl & (np.maximum(np.abs(d[:, 0] - bgx), np.abs(d[:, 1] - bgy)) * g > inlier_px)
        if own.sum() >= 4:
            inl = own
    ratios = np.empty(ng * (ng - 1) // 2)
    m = 0
    for i in range(ng):
        if not inl[i]:
            continue
        for j in range(i + 1, ng):
            if not inl[j]:
                continue
            da = np.hypot(a[i, 0] - a[j, 0], a[i, 1] - a[j, 1])
            if da > 1e-3:
                ratios[m] = np.hypot(c[i, 0] - c[j, 0], c[i, 1] - c[j, 1]) / da
                m += 1
    s = np.median(ratios[:m]) if m > 0 else 1.0
    return True, dx, dy, s, float(np.median(fb[:ng][good])), n_good / ng


@numba.njit(cache=True, nogil=True)
def unit(a):
    """``a`` (2-D float32, C order) flattened, with zero mean and unit norm (all zeros when
    flat): the dot product of two of these is their zero-mean normalized cross-correlation."""
    v = a.ravel()
    mean = 0.0
    for x in v:
        mean += x
    mean /= v.size
    out = np.empty(v.size, np.float32)
    norm = 0.0
    for k in range(v.size):
        out[k] = v[k] - mean
        norm += out[k] * out[k]
    norm = np.sqrt(norm)
    if norm <= 1e-3:
        return np.zeros(v.size, np.float32)
    return out / np.float32(norm)


def warm_up() -> None:
    """Compile (or load from the cache) every kernel now, e.g. when a tracking process starts,
    so that the first object tracked does not pay for it (seconds on a cold cache)."""
    q = np.zeros((40, 2), np.float32)
    st = np.ones(40, np.uint8)
    lk_motion(q, q, st, st, q, 36, 1.0, 1.0, 1.0, 0.5)
    unit(np.zeros((4, 4), np.float32))
