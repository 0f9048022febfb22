"""Single-object tracker for one propagation pass (forward or backward) on grey frames.

A frame here is a ``Pyramid`` (src.vision.frames: the working-resolution grey frame and its
1/2 and 1/4 copies). Each step combines:
- pyramidal Lucas-Kanade on a grid of points inside the box, filtered by forward-backward
  error, with median translation and median scale of the points that move with the object
  and, judged by a ring of points just outside the box, not with the background
  (MedianFlow-style);
- NCC template matching (cv2.matchTemplate) of the average of the keyframe crop and a
  slowly updated recent crop in a search window (wider when LK is unsure), used to correct
  LK when it slips; while lost, re-detection looks for the keyframe crop and for the crop of
  the last very confident step (the keyframe may show the object half hidden);
- an explicit lost state: the object is reported absent after it leaves the frame or after
  its confidence stayed low for ``lost_frames`` frames (TrackerParams), and it is re-acquired when one of
  those two crops matches strongly again near where it coasted, or fairly in one place for
  a few frames in a row (an object coming out from behind an occluder).

Every crop is resampled so that the box is about ``NORM`` px on its long side: the cost per
object and every threshold are independent of the object's size and of the video resolution.
Boxes here are ``(4,)`` float64 xyxy in working-resolution pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from src.vision.confidence import FEATURES, single_pass_confidence
from src.vision.frames import Pyramid
from src.vision.kernels import lk_motion, unit

NORM = 48  # long side of the normalized box for LK, px
TPL = 32  # long side of the NCC templates, px
GRID = 6  # LK points: GRID x GRID
INLIER_PX = 0.5  # a point moves with the object when within this of the median motion (normalized px)
LK_PARAMS = dict(winSize=(9, 9), maxLevel=2, criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 0.03))
# LK points: a GRID x GRID lattice over the inner 80% of the box (fractions of its size)
_g = np.linspace(0.1, 0.9, GRID)
_GRID_UV = np.stack(np.meshgrid(_g, _g), -1).reshape(-1, 2)
# background points: a ring just outside the box
_RING_UV = np.array([[u, v] for v in (-0.2, 1.2) for u in (0.1, 0.5, 0.9)]
                    + [[u, v] for u in (-0.2, 1.2) for v in (0.2, 0.5, 0.8)])
_ALL_UV = np.concatenate([_GRID_UV, _RING_UV])
_NG = GRID * GRID


@dataclass(frozen=True)
class TrackerParams:
    """The built-in tracker's thresholds (the learned tracker shares the lost / re-detection /
    evidence ones). Crop sizes are in normalized-crop px, extents and reaches in box sizes,
    NCC values in [-1, 1]. ``ObjectTracker(..., params=TrackerParams(lost_conf=0.3))`` tries a
    variant without touching the module."""

    search: float = 2.6  # NCC search window, in box sizes ...
    search_near: float = 2.0  # ... while LK holds (peaks up to half a box away)
    pull: float = 0.5  # share of the way from the LK box to a nearby NCC peak
    pull_min_ncc: float = 0.5
    pull_reach: float = 0.5  # a peak at most this many box sizes away pulls ...
    pull_reach_lk: float = 0.25  # ... this many while LK holds (a farther one is likelier a look-alike)
    lk_scale_trust: float = 0.7  # share of LK's per-step scale change applied (it is noisy and adds up as a random walk)
    scales: tuple[float, ...] = (0.95, 1.0, 1.05)
    scale_extent: float = 1.3  # window of the scale search, in box sizes
    scale_cost: float = 0.01  # NCC a size other than the current one must win by
    scale_check_every: int = 3  # NCC scale check every k frames while confident ...
    scale_check_conf: float = 0.7  # ... and every step below this confidence
    lost_conf: float = 0.25
    good_conf: float = 0.85  # a step this sure updates the "last good" template used to re-detect
    lost_frames: int = 6
    reacquire_ncc: float = 0.72
    # ... or only reacquire_ncc_held when the best match holds still for reacquire_held lost frames
    # (within reacquire_hold box sizes per frame): an object coming out from behind an occluder
    # where it went in. A moving look-alike (a car passing the walker) does not hold still.
    reacquire_ncc_held: float = 0.6
    reacquire_held: int = 3
    reacquire_hold: float = 0.1
    reacquire_dist_penalty: float = 0.08  # NCC per box size away from the coasted position
    reacquire_max_extent: float = 10.0  # widest re-detection window while lost, in box sizes
    coarse_min_tpl: int = 8  # re-detection searches at half size first when the template's short side is 2x this
    coarse_refine: float = 1.4  # ... then at full size in a window this many box sizes wide around the coarse peak
    coast_frames: int = 15  # while lost, the coasted box is reported this many frames ...
    coast_conf: float = 0.05  # ... with this confidence
    min_visible: float = 0.35  # share of the box inside the frame below which the object has left
    # An open-ended pass (backward from a track's first keyframe: nothing says the object was there
    # yet) reports the object only while the evidence holds: verify_frames steps in a row with the
    # crop unlike the keyframe crop (NCC below verify_ncc; not the recent crop, which follows a box
    # that slid onto the background) or confidence below lost_conf make it lost, and those steps
    # are taken back; it coasts no box while lost, and only a strong re-detection brings it back
    # (whose template then counts as evidence beside the keyframe's: the keyframe may show the
    # object half hidden).
    verify_ncc: float = 0.5
    verify_frames: int = 3
    # ... and a re-detection whose crop matches the crop it was judged lost on (NCC above this) is
    # the same background again, not the object back.
    verify_same: float = 0.8
    # Size recovery (a keyframe drawn on a half-hidden object): the ring of LK points just outside
    # the box tells where the object goes on past an edge. A side whose ring points (2 of 3) move
    # with the object (within grow_with of its motion) while another side's move apart from it
    # (by grow_apart or more: there is motion contrast to judge by) grows by grow_step of the box
    # on that axis, up to grow_max times the keyframe box. Both in crop px, or that share of the
    # object's motion when larger (legs and arms do not move quite with the body).
    grow_with: tuple[float, ...] = (0.5, 0.4)
    grow_apart: tuple[float, ...] = (1.0, 0.8)
    grow_step: float = 0.08
    grow_max: float = 2.5
    grow_held: int = 4  # ... when that side said so on this many LK steps in a row


DEFAULT_PARAMS = TrackerParams()


def sample(pyr: Pyramid, x1: float, y1: float, x2: float, y2: float, out_w: int, out_h: int) -> np.ndarray:
    """Region ``[x1, x2) x [y1, y2)`` (pixel-edge coordinates of pyramid level 0) resampled to
    ``(out_h, out_w)`` uint8 by one bilinear warp from the pyramid level whose pixels are at
    most 2x finer than the output's; parts outside the image replicate the border."""
    fx, fy = (x2 - x1) / out_w, (y2 - y1) / out_h
    f = min(fx, fy)
    lv = 0 if f < 2 else 1 if f < 4 or len(pyr) < 3 else 2
    k = 1 << lv
    o = (k - 1) / 2  # level-0 position of a level-lv pixel centre, minus k * its index
    m = np.array([[fx / k, 0.0, (x1 + 0.5 * fx - 0.5 - o) / k], [0.0, fy / k, (y1 + 0.5 * fy - 0.5 - o) / k]])
    return cv2.warpAffine(
        pyr[lv], m, (out_w, out_h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )


def _penalize_distance(r: np.ndarray, fx: float, fy: float, size: float, penalty: float) -> np.ndarray:
    """NCC response ``r`` (window pixels at ``fx``, ``fy`` per frame pixel) minus ``penalty``
    per ``size`` (the box's long side) away from the window centre."""
    dx = (np.arange(r.shape[1], dtype=np.float32) - (r.shape[1] - 1) / 2) / fx
    dy = (np.arange(r.shape[0], dtype=np.float32) - (r.shape[0] - 1) / 2) / fy
    return r - penalty * np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2) / size


_EYE = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def warp_point(m: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``(2,)`` point ``p`` through the ``(2, 3)`` affine ``m``."""
    return m[:, :2] @ p + m[:, 2]


_RING_SIDES = np.arange(12).reshape(4, 3)  # ring points of the top, bottom, left, right sides


def _grow_sides(q0, q1, q0b, st1, st2, ox: float, oy: float, p: TrackerParams) -> np.ndarray:
    """``(4,)`` int, 1 for each side (top, bottom, left, right) of the box whose ring points
    move with the object (motion ``ox``, ``oy`` crop px) while another side's move apart from it
    (see TrackerParams.grow_with). ``q0``, ``q1``, ``q0b``, ``st1``, ``st2``: the LK points of ``_lk``."""
    r0, r1, rb = q0.reshape(-1, 2)[_NG:], q1.reshape(-1, 2)[_NG:], q0b.reshape(-1, 2)[_NG:]
    ok = (st1.ravel()[_NG:] == 1) & (st2.ravel()[_NG:] == 1) & (np.abs(r0 - rb).max(1) < 1.0)
    d = np.hypot(r1[:, 0] - r0[:, 0] - ox, r1[:, 1] - r0[:, 1] - oy)
    m = math.hypot(ox, oy)
    with_ = ((d < max(p.grow_with[0], p.grow_with[1] * m)) & ok)[_RING_SIDES].sum(1) >= 2
    apart = ((d > max(p.grow_apart[0], p.grow_apart[1] * m)) & ok)[_RING_SIDES].sum(1) >= 2
    if not apart.any():
        return np.zeros(4, int)
    return with_.astype(int)


def visible_share(box: np.ndarray, w: int, h: int) -> float:
    bw, bh = box[2] - box[0], box[3] - box[1]
    ix = max(0.0, min(box[2], w) - max(box[0], 0))
    iy = max(0.0, min(box[3], h) - max(box[1], 0))
    return ix * iy / max(bw * bh, 1e-6)


@dataclass
class StepResult:
    box: np.ndarray | None  # None when absent
    features: np.ndarray  # (len(FEATURES),) float32
    confidence: float


class ObjectTracker:
    """Follows one box from a keyframe; call ``step(frame)`` for each next frame in pass order."""

    def __init__(self, frame: Pyramid, box: np.ndarray, open_end: bool = False, params: TrackerParams = DEFAULT_PARAMS):
        self.p = params
        self.open_end = open_end
        self.failing = 0  # open-ended: frames in a row the evidence failed (see TrackerParams.verify_ncc)
        self.retract = 0  # open-ended: on becoming lost, the last frames the caller must take back
        self.rejected_u: np.ndarray | None = None  # open-ended: the crop it was judged lost on
        self.verify_u: np.ndarray | None = None  # open-ended: the template of the last re-detection
        self.box = np.asarray(box, np.float64).copy()
        self.h, self.w = frame[0].shape[:2]
        bw, bh = self.box[2] - self.box[0], self.box[3] - self.box[1]
        f = TPL / max(bw, bh)
        self.tw, self.th = max(12, round(bw * f)), max(12, round(bh * f))
        self.key_tpl = sample(frame, *self.box, self.tw, self.th).astype(np.float32)
        self.key_u = unit(self.key_tpl)
        self.rec_tpl = self.key_tpl.copy()
        self.rec_u = self.key_u
        self.mix_tpl = self.key_tpl  # key and recent templates averaged: one NCC search for both
        self.good_tpl = self.key_tpl  # the crop at the last very confident step: re-detection looks
        self.good_u = self.key_u  # for it beside the keyframe crop (which may be half occluded)
        self.key_area = bw * bh
        # size recovery cuts the keyframe crop again: a copy, as ``frame`` is a view into the
        # frame ring, whose slot the decoder reuses once the pass has moved on
        self.key_frame, self.key_box = tuple(np.array(lv) for lv in frame), self.box.copy()
        self.key0_wh = np.array([bw, bh])
        self.grow_sides: np.ndarray | None = None  # from the last LK step (see _grow_sides)
        self.grow_votes = np.zeros(4, int)  # LK steps in a row each side said "grow"
        self.prev = frame
        self.velocity = np.zeros(2)
        self.trusted_velocity = np.zeros(2)  # slow average over confident steps only
        self.key_wh = np.array([bw, bh])
        self.good_wh = self.key_wh.copy()  # size at the last confident step
        self.lost = False
        self.low_run = 0
        self.steps = 0
        self.unchecked = 0  # frames since the last scale check
        self.last_conf = 1.0
        self.lost_steps = 0
        self.held_at: np.ndarray | None = None  # while lost: centre of the last fair match ...
        self.held = 0  # ... and for how many lost frames in a row it held still
        self.left_frame = False  # lost because it left the picture (not a tracking failure)
        # camera motion (src.vision.frames.camera_motion) from the previous frame to the one
        # of the coming step, set by the caller; and the object's own velocity beside it
        self.camera = _EYE
        self.own_velocity = np.zeros(2)

    # --- motion -------------------------------------------------------------------------
    def _lk(self, frame: Pyramid, dt: int = 1):
        """LK from the previous frame: (new box or None, fb error, share of good points)."""
        b = self.box
        bw, bh = b[2] - b[0], b[3] - b[1]
        g = NORM / max(bw, bh)
        margin = 0.5 * max(bw, bh) + dt * np.abs(self.velocity).max()
        rx1, ry1 = b[0] - margin, b[1] - margin
        rx2, ry2 = b[2] + margin, b[3] + margin
        ow, oh = max(8, round((rx2 - rx1) * g)), max(8, round((ry2 - ry1) * g))
        gx, gy = ow / (rx2 - rx1), oh / (ry2 - ry1)
        prev_c = sample(self.prev, rx1, ry1, rx2, ry2, ow, oh)
        cur_c = sample(frame, rx1, ry1, rx2, ry2, ow, oh)
        q0 = ((_ALL_UV * (bw, bh) + (b[0] - rx1, b[1] - ry1)) * (gx, gy)).astype(np.float32).reshape(-1, 1, 2)
        q1, st1, _ = cv2.calcOpticalFlowPyrLK(prev_c, cur_c, q0, None, **LK_PARAMS)
        q0b, st2, _ = cv2.calcOpticalFlowPyrLK(cur_c, prev_c, q1, None, **LK_PARAMS)
        found, dx, dy, s, fb, good = lk_motion(
            q0.reshape(-1, 2), q1.reshape(-1, 2), st1.ravel(), st2.ravel(), q0b.reshape(-1, 2), _NG, gx, gy, g, INLIER_PX
        )
        if not found:
            self.grow_sides = None
            return None, 10.0, 0.0
        self.grow_sides = _grow_sides(q0, q1, q0b, st1, st2, dx * gx, dy * gy, self.p)
        s = min(max(1 + self.p.lk_scale_trust * (s - 1), 0.85), 1.18)
        cx, cy = (b[0] + b[2]) / 2 + dx, (b[1] + b[3]) / 2 + dy
        nb = np.array([cx - s * bw / 2, cy - s * bh / 2, cx + s * bw / 2, cy + s * bh / 2])
        return nb, fb, good

    def _grow(self, frame: Pyramid, box: np.ndarray) -> np.ndarray:
        """``box`` grown on the sides where the object goes on past its edge (``_grow_sides``);
        the templates are cut again for the grown box (the keyframe's from the keyframe)."""
        sides = self.grow_sides
        self.grow_votes = np.zeros(4, int) if sides is None else (self.grow_votes + 1) * sides
        sides = (self.grow_votes >= self.p.grow_held).astype(int)
        if not sides.any():
            return box
        self.grow_votes[sides > 0] = 0
        bw, bh = box[2] - box[0], box[3] - box[1]
        gw = self.p.grow_step * bw * (sides[2] + sides[3]) if bw * (1 + self.p.grow_step) <= self.p.grow_max * self.key0_wh[0] else 0.0
        gh = self.p.grow_step * bh * (sides[0] + sides[1]) if bh * (1 + self.p.grow_step) <= self.p.grow_max * self.key0_wh[1] else 0.0
        if gw == 0 and gh == 0:
            return box
        sides = sides * np.array([gh > 0, gh > 0, gw > 0, gw > 0])
        d = self.p.grow_step * np.array([-bh * sides[0], bh * sides[1], -bw * sides[2], bw * sides[3]])
        nb = box + np.array([d[2], d[0], d[3], d[1]])
        # the keyframe box grows by the same share of its size on the same sides
        k = self.key_box
        kw, kh = k[2] - k[0], k[3] - k[1]
        self.key_box = k + np.array([d[2] / bw * kw, d[0] / bh * kh, d[3] / bw * kw, d[1] / bh * kh])
        self.key_tpl = sample(self.key_frame, *self.key_box, self.tw, self.th).astype(np.float32)
        self.key_u = unit(self.key_tpl)
        self.rec_tpl = sample(frame, *nb, self.tw, self.th).astype(np.float32)
        self.rec_u = unit(self.rec_tpl)
        self.good_tpl, self.good_u = self.rec_tpl, self.rec_u
        self.mix_tpl = 0.5 * (self.key_tpl + self.rec_tpl)
        self.key_wh = np.array([nb[2] - nb[0], nb[3] - nb[1]])
        self.key_area = self.key_wh[0] * self.key_wh[1]
        return nb

    def _search(self, frame: Pyramid, box: np.ndarray, extent: float, tpl: np.ndarray | None = None,
                dist_penalty: float = 0.0):
        """NCC of ``tpl`` (default: key and recent templates averaged) in a window ``extent``
        box-sizes wide around ``box``: (peak centre (x, y), peak score, response map, window
        origin, scale)."""
        bw, bh = box[2] - box[0], box[3] - box[1]
        fx, fy = self.tw / bw, self.th / bh
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        ww, wh = extent * bw, extent * bh
        x1, y1 = cx - ww / 2, cy - wh / 2
        win = sample(frame, x1, y1, x1 + ww, y1 + wh, round(ww * fx), round(wh * fy)).astype(np.float32)
        tpl = self.mix_tpl if tpl is None else tpl
        r = cv2.matchTemplate(win, tpl, cv2.TM_CCOEFF_NORMED)
        if dist_penalty > 0:
            r = _penalize_distance(r, fx, fy, max(bw, bh), dist_penalty)
        _, peak, _, loc = cv2.minMaxLoc(r)
        px = x1 + (loc[0] + self.tw / 2) / fx
        py = y1 + (loc[1] + self.th / 2) / fy
        return np.array([px, py]), float(peak), r, (x1, y1, fx, fy)

    def _search_wide(self, frame: Pyramid, box: np.ndarray, extent: float, tpl: np.ndarray):
        """Re-detection: ``_search`` with the distance penalty over a wide window, coarse to
        fine (the window and template at half size, then full size around the coarse peak:
        ~1/16 of the work). Returns (peak centre, full-size NCC there)."""
        bw, bh = box[2] - box[0], box[3] - box[1]
        if min(self.tw, self.th) < 2 * self.p.coarse_min_tpl:
            peak_c, peak, _, _ = self._search(frame, box, extent, tpl, dist_penalty=self.p.reacquire_dist_penalty)
            return peak_c, peak
        tw, th = self.tw // 2, self.th // 2
        fx, fy = tw / bw, th / bh
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        ww, wh = extent * bw, extent * bh
        x1, y1 = cx - ww / 2, cy - wh / 2
        win = sample(frame, x1, y1, x1 + ww, y1 + wh, round(ww * fx), round(wh * fy)).astype(np.float32)
        r = cv2.matchTemplate(win, cv2.resize(tpl, (tw, th), interpolation=cv2.INTER_AREA), cv2.TM_CCOEFF_NORMED)
        r = _penalize_distance(r, fx, fy, max(bw, bh), self.p.reacquire_dist_penalty)
        _, _, _, loc = cv2.minMaxLoc(r)
        px, py = x1 + (loc[0] + tw / 2) / fx, y1 + (loc[1] + th / 2) / fy
        near = np.array([px - bw / 2, py - bh / 2, px + bw / 2, py + bh / 2])
        peak_c, peak, _, _ = self._search(frame, near, self.p.coarse_refine, tpl)
        return peak_c, peak

    # --- one step -----------------------------------------------------------------------
    def step(self, frame: Pyramid, dt: int = 1) -> StepResult:
        """Track onto ``frame``, ``dt`` frames after the previous one (2 when the caller skips
        a frame it will interpolate; velocities stay per frame)."""
        self.steps += dt
        if self.lost:
            res = self._reacquire(frame)
            self.prev = frame
            return res
        old = self.box.copy()
        lk_box, fb, good = self._lk(frame, dt)
        base = lk_box if lk_box is not None else old + dt * np.concatenate((self.velocity, self.velocity))
        lk_weak = lk_box is None or fb > 1.0 or good < 0.4
        peak_c, peak, r, (x1, y1, fx, fy) = self._search(frame, base, self.p.search if lk_weak else self.p.search_near)
        bcx, bcy = (base[0] + base[2]) / 2, (base[1] + base[3]) / 2
        ix = int(round((bcx - x1) * fx - self.tw / 2))
        iy = int(round((bcy - y1) * fy - self.th / 2))
        ix, iy = min(max(ix, 0), r.shape[1] - 1), min(max(iy, 0), r.shape[0] - 1)
        r_base = float(r[iy, ix])
        size = max(base[2] - base[0], base[3] - base[1])
        jump = np.hypot(peak_c[0] - bcx, peak_c[1] - bcy) / size
        box = base
        if (lk_box is None and peak > 0.6) or (lk_weak and peak > 0.65 and peak - r_base > 0.25 and jump > 0.15):
            d = peak_c - (bcx, bcy)
            box = base + np.concatenate((d, d))
        elif peak > self.p.pull_min_ncc and jump < (self.p.pull_reach if lk_weak else self.p.pull_reach_lk):
            # appearance pulls LK back onto the object: stops slow drift onto the background
            d = self.p.pull * (peak_c - (bcx, bcy))
            box = base + np.concatenate((d, d))
        self.unchecked += dt
        if self.last_conf < self.p.scale_check_conf or self.unchecked >= self.p.scale_check_every:
            box = self._refine_scale(frame, box)
            self.unchecked = 0
        if not lk_weak and self.last_conf >= self.p.scale_check_conf:
            box = self._grow(frame, box)
        cur = sample(frame, *box, self.tw, self.th).astype(np.float32)
        cur_u = unit(cur)
        ncc_key = float(cur_u.dot(self.key_u))
        ncc_rec = float(cur_u.dot(self.rec_u))
        move = ((box[:2] + box[2:]) - (old[:2] + old[2:])) / 2 / dt
        motion = math.hypot(*(move - self.velocity)) / size
        area = (box[2] - box[0]) * (box[3] - box[1])
        feats = np.array(
            [
                np.log1p(fb),
                good,
                ncc_key,
                ncc_rec,
                max(0.0, peak - max(ncc_key, ncc_rec)),
                min(motion, 2.0),
                abs(np.log(area / self.key_area)),
                np.log1p(self.steps),
                float(lk_box is None),
            ],
            np.float32,
        )
        return self._settle(frame, box, move, feats, single_pass_confidence(feats), cur, cur_u, ncc_key, ncc_rec, dt)

    def _settle(self, frame: Pyramid, box: np.ndarray, move: np.ndarray, feats: np.ndarray, conf: float,
                cur: np.ndarray, cur_u: np.ndarray, ncc_key: float, ncc_rec: float, dt: int) -> StepResult:
        """The end of a step onto ``frame`` at ``box`` (``move``: its motion per frame, ``cur``,
        ``cur_u``: its crop, raw and unit; NCC of it to the keyframe and recent crops):
        velocities, templates, and whether the object is still there (left the picture, lost,
        or, on an open-ended pass, no longer like the object)."""
        self.last_conf = conf
        old_c = (self.box[:2] + self.box[2:]) / 2
        self.box = box
        self.velocity = 0.6 * self.velocity + 0.4 * move
        if conf > 0.6:
            self.trusted_velocity = 0.8 * self.trusted_velocity + 0.2 * move
            own = move - (warp_point(self.camera, old_c) - old_c) / dt  # the camera's share taken out
            self.own_velocity = 0.8 * self.own_velocity + 0.2 * own
            self.good_wh = np.array([box[2] - box[0], box[3] - box[1]])
        self.prev = frame
        if conf > self.p.good_conf:
            self.good_tpl, self.good_u = cur, cur_u
        if conf > 0.5 and ncc_rec > 0.5:
            self.rec_tpl = 0.85 * self.rec_tpl + 0.15 * cur
            self.rec_u = unit(self.rec_tpl)
            self.mix_tpl = 0.5 * (self.key_tpl + self.rec_tpl)
        if visible_share(box, self.w, self.h) < self.p.min_visible:
            self.lost = self.left_frame = True
            return StepResult(None, feats, 0.0)
        self.low_run = self.low_run + 1 if conf < self.p.lost_conf else 0
        if self.low_run >= self.p.lost_frames:
            self.lost = True
        if self.open_end:
            ref = ncc_key if self.verify_u is None else max(ncc_key, float(cur_u.dot(self.verify_u)))
            weak = conf < self.p.lost_conf or ref < self.p.verify_ncc
            self.failing = self.failing + dt if weak else 0
            if self.failing >= self.p.verify_frames or self.lost:
                self.lost, self.retract = True, self.failing
                # sure of a crop unlike the object: that crop is something else (an occluder
                # it was unsure on may hide the object, which will come out there again)
                self.rejected_u = cur_u if conf >= self.p.lost_conf else None
                self.failing = 0
                return StepResult(None, feats, 0.0)
        return StepResult(box.copy(), feats, conf)

    def _refine_scale(self, frame: Pyramid, box: np.ndarray) -> np.ndarray:
        """Search the keyframe crop at a few sizes around ``box``, each in a small window (the
        object may sit off-centre in a box grown too large); move half-way to the size and
        position of the best match (LK scale alone drifts on thin objects and on boxes that
        hold background; the recent crop would drift with it, so only the keyframe's
        appearance judges size)."""
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        hw, hh = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
        best, best_s, best_c = -2.0, 1.0, np.array([cx, cy])
        for s in self.p.scales:
            b = np.array([cx - s * hw, cy - s * hh, cx + s * hw, cy + s * hh])
            peak_c, peak, _, _ = self._search(frame, b, self.p.scale_extent, self.key_tpl)
            v = peak - (self.p.scale_cost if s != 1.0 else 0.0)
            if v > best:
                best, best_s, best_c = v, s, peak_c
        s = 1.0 + 0.5 * (best_s - 1.0)
        # the centre follows the match only as far as the resize allows with the new box
        # inside the old one (or around it): a resize, never a jump onto a look-alike
        lim = abs(1.0 - s) * np.array([hw, hh])
        c = np.array([cx, cy]) + np.clip(best_c - (cx, cy), -lim, lim)
        return np.array([c[0] - s * hw, c[1] - s * hh, c[0] + s * hw, c[1] + s * hh])

    def _holds_still(self, box: np.ndarray | None) -> bool:
        """Whether this lost frame's fair match ``box`` (None: none) is where the fair match
        of each of the last ``reacquire_held`` - 1 lost frames was too."""
        if box is None:
            self.held_at, self.held = None, 0
            return False
        c = (box[:2] + box[2:]) / 2
        size = max(box[2] - box[0], box[3] - box[1])
        still = self.held_at is not None and np.hypot(*(c - self.held_at)) <= self.p.reacquire_hold * size
        self.held_at, self.held = c, self.held + 1 if still else 1
        return self.held >= self.p.reacquire_held

    def _reacquire(self, frame: Pyramid) -> StepResult:
        """While lost: the box coasts with the velocity of the last confident steps; look for
        the keyframe template around it, at the keyframe size and at the last confident
        size, in a window that widens the longer the object stays lost."""
        self.lost_steps += 1
        if self.camera is _EYE:
            c = (self.box[:2] + self.box[2:]) / 2 + self.trusted_velocity
        else:  # carried by the camera, plus its own motion
            c = warp_point(self.camera, (self.box[:2] + self.box[2:]) / 2) + self.own_velocity
        cx, cy = np.clip(c[0], 0, self.w), np.clip(c[1], 0, self.h)
        feats = np.zeros(len(FEATURES), np.float32)
        best = (-2.0, None, None)
        extent = min(2 * self.p.search + 0.25 * self.lost_steps, self.p.reacquire_max_extent)
        looks = [(self.key_wh, self.key_tpl), (self.good_wh, self.key_tpl)]
        if np.allclose(self.key_wh, self.good_wh, rtol=0.05):
            looks.pop()
        if float(self.good_u.dot(self.key_u)) < 0.9:  # the object looked different when last sure
            looks.append((self.good_wh, self.good_tpl))
        for (bw, bh), tpl in looks:
            box = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
            peak_c, peak = self._search_wide(frame, box, extent, tpl)
            if peak > best[0]:
                nb = np.array([peak_c[0] - bw / 2, peak_c[1] - bh / 2, peak_c[0] + bw / 2, peak_c[1] + bh / 2])
                best = (peak, nb, tpl)
        bw, bh = self.box[2] - self.box[0], self.box[3] - self.box[1]
        self.box = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
        peak, nb, tpl = best
        if self.rejected_u is not None and nb is not None:
            if float(unit(sample(frame, *nb, self.tw, self.th).astype(np.float32)).dot(self.rejected_u)) > self.p.verify_same:
                peak = -1.0  # what it was judged lost on: not the object
        held = self._holds_still(nb if peak >= self.p.reacquire_ncc_held else None)
        if (peak < self.p.reacquire_ncc and (not held or self.open_end)) or visible_share(nb, self.w, self.h) < 0.9:
            if (self.lost_steps <= self.p.coast_frames and not self.left_frame and not self.open_end
                    and visible_share(self.box, self.w, self.h) >= self.p.min_visible):
                # a short occlusion: report the coasted box, flagged by its low confidence
                return StepResult(self.box.copy(), feats, self.p.coast_conf)
            return StepResult(None, feats, 0.0)
        self.box, self.lost, self.low_run, self.lost_steps, self.left_frame = nb, False, 0, 0, False
        self.held_at, self.held = None, 0
        self.velocity = np.zeros(2)
        self.rec_tpl = tpl.copy()
        self.rec_u = unit(tpl)
        if self.open_end:
            self.verify_u = self.rec_u
        self.mix_tpl = 0.5 * (self.key_tpl + self.rec_tpl)
        feats = np.array([np.log1p(1.0), 1.0, peak, peak, 0.0, 0.0, 0.0, np.log1p(self.steps), 0.0], np.float32)
        return StepResult(nb.copy(), feats, single_pass_confidence(feats))
