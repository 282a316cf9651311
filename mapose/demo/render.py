"""Synthetic multi-animal scenes with exact ground truth.

Each animal is a grey elliptical body with five coloured body parts (snout, left ear,
right ear, spine, tail base) drawn as discs.  All animals look alike, so identity over
time must come from tracking, as with real litter-mates.  Motion is smooth (a heading
that turns with an Ornstein-Uhlenbeck angular velocity, a speed that drifts), animals are
periodically drawn towards each other so that close passes and overlaps happen, and
static "pillars" hide animals that walk behind them.  The background is a fixed smooth
texture plus fresh per-frame sensor noise.

Ground truth is recorded from the renderer itself: ``keypoints`` are the true positions
and ``visible`` says whether the body part's disc is actually seen in the frame (not
covered by another animal, by a pillar, nor outside the image), computed from an
owner buffer drawn with the same shapes as the image.  Evaluation uses only visible
keypoints, as a human labeller would.

The same drawing code renders training samples for the demo model
(:func:`render_frame`), so the model never sees the evaluation video itself.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np

from mapose.io.atomic import atomic_path

BODYPARTS = ("snout", "leftear", "rightear", "spine", "tailbase")
SKELETON = (("snout", "leftear"), ("snout", "rightear"), ("leftear", "rightear"),
            ("snout", "spine"), ("spine", "tailbase"))
# BGR colours of the body-part discs (red, green, blue, yellow, magenta).
PART_COLORS = ((40, 40, 230), (60, 210, 60), (230, 90, 40), (40, 220, 230), (220, 60, 220))
BODY_COLOR = (120, 120, 120)
OCCLUDER_COLOR = (70, 62, 55)

# Body-frame offsets of the parts, in units of body length L (x forward) and width W
# (y to the animal's left).  Parts sit on or near the body outline so that a covered
# body hides them.
_PART_OFFSETS = np.array([[0.50, 0.0], [0.30, 0.42], [0.30, -0.42], [0.0, 0.0], [-0.50, 0.0]])


@dataclasses.dataclass
class SceneConfig:
    """Tunables of a rendered scene.

    Attributes
    ----------
    n_animals : int
        Number of animals (all present in every frame).
    n_frames : int
        Number of frames.
    width, height : int
        Frame size in pixels.
    fps : float
        Frame rate written into the video.
    body_length, body_width : float
        Mean body size in pixels; each animal gets a size within +-10 %.
    part_radius : int
        Radius of a body-part disc, pixels.
    speed : float
        Mean speed in pixels per frame.
    n_occluders : int
        Number of static pillars that hide animals walking behind them.
    noise_std : float
        Standard deviation of per-frame Gaussian pixel noise (0-255 scale).
    encounter_period : int
        Every this many frames each animal picks another animal to walk towards, which
        produces close encounters and overlaps.
    seed : int
        Random seed; the same config renders the same video.
    """

    n_animals: int = 3
    n_frames: int = 300
    width: int = 320
    height: int = 256
    fps: float = 25.0
    body_length: float = 46.0
    body_width: float = 20.0
    part_radius: int = 4
    speed: float = 2.2
    n_occluders: int = 1
    noise_std: float = 5.0
    encounter_period: int = 60
    seed: int = 0

    def validate(self) -> None:
        if int(self.n_animals) < 1:
            raise ValueError(f"n_animals must be >= 1, got {self.n_animals!r}; use 1 or more animals.")
        if int(self.n_frames) < 1:
            raise ValueError(f"n_frames must be >= 1, got {self.n_frames!r}; use 1 or more frames.")
        if self.width < 64 or self.height < 64:
            raise ValueError(
                f"frame size must be at least 64x64 pixels, got width={self.width!r}, "
                f"height={self.height!r}; use a larger frame."
            )
        area_per_animal = self.width * self.height / self.n_animals
        if area_per_animal < 4 * self.body_length * self.body_length:
            raise ValueError(
                f"{self.n_animals} animals do not fit in a {self.width}x{self.height} frame with "
                f"body_length={self.body_length}; use fewer animals or a larger frame."
            )


@dataclasses.dataclass
class GroundTruth:
    """Ground truth of a rendered scene.

    Attributes
    ----------
    keypoints : ndarray of shape (n_frames, n_animals, n_bodyparts, 2)
        True x, y of every body part (also when hidden), float64.
    visible : ndarray of shape (n_frames, n_animals, n_bodyparts)
        Whether the body part's disc is seen in the frame, bool.
    bodyparts, individuals : list of str
    fps : float
    width, height : int
    """

    keypoints: np.ndarray
    visible: np.ndarray
    bodyparts: list
    individuals: list
    fps: float
    width: int
    height: int

    def visible_keypoints(self) -> np.ndarray:
        """Keypoints with hidden ones set to NaN, shape (n_frames, n_animals, n_bodyparts, 2)."""
        out = self.keypoints.copy()
        out[~self.visible] = np.nan
        return out

    def to_dataframe(self, scorer: str = "ground_truth"):
        """DLC tracks layout: columns (scorer, individuals, bodyparts, coords), hidden = NaN."""
        import pandas as pd

        n_frames, n_animals, n_parts, _ = self.keypoints.shape
        xy = self.visible_keypoints()
        lik = np.where(self.visible, 1.0, np.nan)[..., None]
        values = np.concatenate([xy, lik], axis=-1).reshape(n_frames, -1)
        columns = pd.MultiIndex.from_product(
            [[scorer], list(self.individuals), list(self.bodyparts), ["x", "y", "likelihood"]],
            names=["scorer", "individuals", "bodyparts", "coords"],
        )
        return pd.DataFrame(values, columns=columns, index=np.arange(n_frames))

    def save(self, npz_path, h5_path=None) -> None:
        """Write ``npz_path`` (arrays + metadata) and, if given, a DLC-style tracks ``.h5``."""
        with atomic_path(npz_path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(
                    fh, keypoints=self.keypoints, visible=self.visible,
                    bodyparts=np.array(self.bodyparts), individuals=np.array(self.individuals),
                    fps=self.fps, width=self.width, height=self.height,
                )
        if h5_path is not None:
            df = self.to_dataframe()
            with atomic_path(h5_path) as tmp:
                df.to_hdf(tmp, key="tracks", format="table", mode="w")

    @classmethod
    def load(cls, npz_path) -> "GroundTruth":
        path = Path(npz_path)
        if not path.is_file():
            raise FileNotFoundError(f"ground-truth file {str(path)!r} does not exist; render it with mapose demo.")
        with np.load(path, allow_pickle=False) as d:
            return cls(
                keypoints=d["keypoints"], visible=d["visible"].astype(bool),
                bodyparts=[str(b) for b in d["bodyparts"]],
                individuals=[str(i) for i in d["individuals"]],
                fps=float(d["fps"]), width=int(d["width"]), height=int(d["height"]),
            )


# --------------------------------------------------------------------------- drawing


def animal_keypoints(center, heading, length, width, bend=0.0) -> np.ndarray:
    """Body-part positions of one animal, shape (5, 2).

    ``bend`` (radians) swings the tail base sideways, so the shape is not rigid.
    """
    off = _PART_OFFSETS * np.array([length, width])
    off[4] = [-0.5 * length * math.cos(bend), -0.5 * length * math.sin(bend)]
    c, s = math.cos(heading), math.sin(heading)
    rot = np.array([[c, -s], [s, c]])
    return np.asarray(center, float) + off @ rot.T


def _draw_animal(img, owner, code_body, code_parts, kps, heading, length, width, radius):
    import cv2

    center = kps[3]
    axes = (int(round(0.5 * length)), int(round(0.5 * width)))
    ang = math.degrees(heading)
    ci = (int(round(center[0] * 16)), int(round(center[1] * 16)))
    # shift=4 gives sub-pixel placement: smooth motion without 1-px jumps
    cv2.ellipse(img, ci, (axes[0] * 16, axes[1] * 16), ang, 0, 360, BODY_COLOR, -1, cv2.LINE_AA, 4)
    cv2.ellipse(owner, ci, (axes[0] * 16, axes[1] * 16), ang, 0, 360, code_body, -1, cv2.LINE_8, 4)
    # a tail segment from the body to the tail base makes the bend visible
    tb = (int(round(kps[4, 0] * 16)), int(round(kps[4, 1] * 16)))
    cv2.line(img, ci, tb, BODY_COLOR, max(2, radius), cv2.LINE_AA, 4)
    for k, (x, y) in enumerate(kps):
        p = (int(round(x * 16)), int(round(y * 16)))
        cv2.circle(img, p, radius * 16, PART_COLORS[k], -1, cv2.LINE_AA, 4)
        cv2.circle(owner, p, radius * 16, code_parts[k], -1, cv2.LINE_8, 4)


def make_background(width, height, rng) -> np.ndarray:
    """A smooth dark texture (uint8, H x W x 3)."""
    import cv2

    base = rng.normal(0.0, 1.0, size=(max(2, height // 8), max(2, width // 8), 3)).astype(np.float32)
    tex = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC)
    tint = rng.uniform(18, 40, size=3).astype(np.float32)
    return np.clip(tint + 9.0 * tex, 0, 255).astype(np.uint8)


def render_frame(background, animals, occluders=(), noise_std=0.0, rng=None, part_radius=4):
    """Draw one frame and report which body parts are visible.

    Parameters
    ----------
    background : ndarray of shape (H, W, 3), uint8
    animals : list of (keypoints (5, 2), heading, length, width)
        Drawn in order, later animals on top.
    occluders : list of (x0, y0, x1, y1)
        Pillars drawn on top of everything.
    noise_std : float
        Per-pixel Gaussian noise added at the end.
    rng : numpy.random.Generator, optional
        Source of the noise.

    Returns
    -------
    image : ndarray of shape (H, W, 3), uint8 (BGR)
    visible : ndarray of shape (n_animals, 5), bool
    """
    import cv2

    img = background.copy()
    h, w = img.shape[:2]
    owner = np.zeros((h, w), np.int32)
    n_parts = len(BODYPARTS)
    for i, (kps, heading, length, width) in enumerate(animals):
        base = 1 + i * (n_parts + 1)
        _draw_animal(img, owner, base, [base + 1 + k for k in range(n_parts)], kps, heading,
                     length, width, part_radius)
    for x0, y0, x1, y1 in occluders:
        cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), OCCLUDER_COLOR, -1)
        cv2.rectangle(owner, (int(x0), int(y0)), (int(x1), int(y1)), -1, -1)
    visible = np.zeros((len(animals), n_parts), bool)
    for i, (kps, *_rest) in enumerate(animals):
        base = 1 + i * (n_parts + 1)
        for k, (x, y) in enumerate(kps):
            xi, yi = int(round(x)), int(round(y))
            if 0 <= xi < w and 0 <= yi < h:
                visible[i, k] = owner[yi, xi] == base + 1 + k
    if noise_std > 0:
        rng = np.random.default_rng() if rng is None else rng
        noisy = img.astype(np.float32) + rng.normal(0.0, noise_std, img.shape).astype(np.float32)
        img = np.clip(noisy, 0, 255).astype(np.uint8)
    return img, visible


# --------------------------------------------------------------------------- motion


def simulate_motion(cfg: SceneConfig, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Smooth trajectories with close encounters.

    Returns
    -------
    centers : ndarray of shape (n_frames, n_animals, 2)
    headings : ndarray of shape (n_frames, n_animals)
    bends : ndarray of shape (n_frames, n_animals)
    sizes : ndarray of shape (n_animals, 2)
        Body length and width of each animal.
    """
    n, f = cfg.n_animals, cfg.n_frames
    sizes = np.column_stack([
        cfg.body_length * rng.uniform(0.9, 1.1, n), cfg.body_width * rng.uniform(0.9, 1.1, n)
    ])
    margin = 0.75 * cfg.body_length
    lo = np.array([margin, margin])
    hi = np.array([cfg.width - margin, cfg.height - margin])
    # start spread out: rejection-sample positions at least one body length apart
    pos = np.zeros((n, 2))
    for i in range(n):
        for _ in range(200):
            p = rng.uniform(lo, hi)
            if i == 0 or np.min(np.linalg.norm(pos[:i] - p, axis=1)) > 1.5 * cfg.body_length:
                break
        pos[i] = p
    heading = rng.uniform(-math.pi, math.pi, n)
    omega = np.zeros(n)
    speed = cfg.speed * rng.uniform(0.7, 1.3, n)
    target = np.full(n, -1)
    phase = rng.uniform(0, 2 * math.pi, n)
    centers = np.zeros((f, n, 2))
    headings = np.zeros((f, n))
    bends = np.zeros((f, n))
    for t in range(f):
        if t % cfg.encounter_period == 0 and n > 1:
            target = np.array([rng.choice([j for j in range(n) if j != i]) if rng.random() < 0.5 else -1
                               for i in range(n)])
        # first part of each period: approach the chosen animal; then move apart again, so
        # encounters are brief passes rather than permanent huddles
        approach = (t % cfg.encounter_period) < 0.4 * cfg.encounter_period
        desired = np.zeros(n)
        for i in range(n):
            steer = 0.0
            # walls: turn towards the arena centre when close to a border
            to_c = np.array([cfg.width / 2, cfg.height / 2]) - pos[i]
            near_wall = np.any(pos[i] < lo + cfg.body_length) or np.any(pos[i] > hi - cfg.body_length)
            if near_wall:
                steer += 0.25 * _angle_diff(math.atan2(to_c[1], to_c[0]), heading[i])
            for j in range(n):
                if j == i:
                    continue
                d = pos[j] - pos[i]
                dist = float(np.hypot(*d))
                if approach and target[i] == j and dist > 0.6 * cfg.body_length:
                    steer += 0.06 * _angle_diff(math.atan2(d[1], d[0]), heading[i])
                elif not approach and dist < 1.6 * cfg.body_length:
                    steer += 0.08 * _angle_diff(math.atan2(-d[1], -d[0]), heading[i])
            desired[i] = steer
        omega = 0.85 * omega + 0.15 * desired + rng.normal(0.0, 0.035, n)
        heading = heading + omega
        speed = np.clip(speed + rng.normal(0.0, 0.08, n), 0.4 * cfg.speed, 1.6 * cfg.speed)
        step = speed[:, None] * np.column_stack([np.cos(heading), np.sin(heading)])
        pos = pos + step
        # soft repulsion: animals may touch and overlap partly, never merge completely
        for i in range(n):
            for j in range(i + 1, n):
                d = pos[j] - pos[i]
                dist = float(np.hypot(*d))
                min_dist = 0.55 * cfg.body_length
                if dist < min_dist:
                    push = (min_dist - dist) / 2 * (d / dist if dist > 1e-6 else np.array([1.0, 0.0]))
                    pos[i] -= push
                    pos[j] += push
        pos = np.clip(pos, lo, hi)
        centers[t] = pos
        headings[t] = heading
        bends[t] = 0.35 * np.sin(0.25 * t + phase) - 1.5 * omega
    return centers, headings, bends, sizes


def _angle_diff(a, b):
    return (a - b + math.pi) % (2 * math.pi) - math.pi


def make_occluders(cfg: SceneConfig, rng) -> list:
    occ = []
    for _ in range(cfg.n_occluders):
        ow = int(rng.uniform(0.05, 0.08) * cfg.width)
        oh = int(rng.uniform(0.25, 0.4) * cfg.height)
        x0 = int(rng.uniform(0.2, 0.8) * cfg.width - ow / 2)
        y0 = int(rng.uniform(0.35, 0.65) * cfg.height - oh / 2)
        occ.append((x0, max(0, y0), x0 + ow, min(cfg.height - 1, y0 + oh)))
    return occ


# --------------------------------------------------------------------------- video


def render_video(video_path, cfg: SceneConfig | None = None, gt_path=None, gt_h5_path=None):
    """Render a synthetic multi-animal video and its ground truth.

    Parameters
    ----------
    video_path : str or os.PathLike
        Output ``.avi``.  Written losslessly (FFV1) when the OpenCV build supports it,
        otherwise as MJPG.
    cfg : SceneConfig, optional
        Scene tunables; defaults to ``SceneConfig()``.
    gt_path : str or os.PathLike, optional
        Where to write the ground-truth ``.npz``; default ``<video stem>_gt.npz``.
    gt_h5_path : str or os.PathLike, optional
        Where to write the ground truth as a DLC tracks ``.h5``; default
        ``<video stem>_gt.h5``.

    Returns
    -------
    GroundTruth
    """
    import cv2

    cfg = SceneConfig() if cfg is None else cfg
    cfg.validate()
    video_path = Path(video_path)
    if video_path.suffix.lower() != ".avi":
        raise ValueError(f"video_path must end in .avi, got {str(video_path)!r}; e.g. 'demo.avi'.")
    gt_path = video_path.with_name(video_path.stem + "_gt.npz") if gt_path is None else Path(gt_path)
    gt_h5_path = video_path.with_name(video_path.stem + "_gt.h5") if gt_h5_path is None else Path(gt_h5_path)
    rng = np.random.default_rng(cfg.seed)
    background = make_background(cfg.width, cfg.height, rng)
    occluders = make_occluders(cfg, rng)
    centers, headings, bends, sizes = simulate_motion(cfg, rng)
    n_parts = len(BODYPARTS)
    kps_all = np.zeros((cfg.n_frames, cfg.n_animals, n_parts, 2))
    vis_all = np.zeros((cfg.n_frames, cfg.n_animals, n_parts), bool)
    video_path.parent.mkdir(parents=True, exist_ok=True)
    # OpenCV picks the container from the extension, so the temporary name keeps ".avi"
    tmp = video_path.with_name(f".{video_path.stem}.{os.getpid()}.part.avi")
    try:
        writer = None
        for codec in ("FFV1", "MJPG"):
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*codec), cfg.fps,
                                     (cfg.width, cfg.height))
            if writer.isOpened():
                break
            writer.release()
        if writer is None or not writer.isOpened():
            raise OSError(f"OpenCV cannot write {str(video_path)!r} with FFV1 or MJPG; check the OpenCV build.")
        try:
            for t in range(cfg.n_frames):
                animals = []
                for i in range(cfg.n_animals):
                    kps = animal_keypoints(centers[t, i], headings[t, i], sizes[i, 0], sizes[i, 1], bends[t, i])
                    kps_all[t, i] = kps
                    animals.append((kps, headings[t, i], sizes[i, 0], sizes[i, 1]))
                # z-order changes over time so that each animal sometimes passes on top
                order = np.argsort(np.sin(0.01 * t + np.arange(cfg.n_animals) * 2.1))
                img, vis = render_frame(background, [animals[i] for i in order], occluders,
                                        cfg.noise_std, rng, cfg.part_radius)
                vis_all[t, order] = vis
                writer.write(img)
        finally:
            writer.release()
        os.replace(tmp, video_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    gt = GroundTruth(
        keypoints=kps_all, visible=vis_all, bodyparts=list(BODYPARTS),
        individuals=[f"animal{i}" for i in range(cfg.n_animals)],
        fps=float(cfg.fps), width=int(cfg.width), height=int(cfg.height),
    )
    gt.save(gt_path, gt_h5_path)
    return gt
