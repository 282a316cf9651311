"""The model's inference transform (``pytorch_config.yaml: data.inference``) for video frames.

DLC 3.0.2 builds an albumentations pipeline from ``data.inference``; for bottom-up models
the keys that can be set are, in DLC's order: ``resize``, ``longest_max_size``, training
augmentations (``hflip``, ``affine``, ``crop_sampling``, ...), ``auto_padding``,
``normalize_images`` and ``scale_to_unit_range``.  mapose supports what DLC's own presets
write:

* ``normalize_images: true`` -- ImageNet normalisation, done inside the network graph
  (:class:`mapose.models.pose_model.FramesModel`);
* ``auto_padding`` -- albumentations ``PadIfNeeded`` as HRNet presets configure it
  (``pad_width_divisor: 32, pad_height_divisor: 32``, border ``reflect_101``), see
  :class:`AutoPadding`.

Any other transform raises a ValueError naming the key, instead of silently giving
different numbers.

Padding position
----------------
DLC's ``auto_padding`` defaults to ``position: random``: albumentations draws the split of
the padding between top/bottom and left/right anew for every frame, so DLC's HRNet
predictions are not reproducible run to run.  mapose replaces ``random`` with the
deterministic ``top_left`` (image at the top-left corner, all padding at the bottom and
right), which is one of DLC's possible draws (the one with no padding before the image):

* the map back to frame coordinates is the identity (offset 0), so no rounding is added
  and DLC's -1 placeholder rows stay -1;
* a frame already divisible by the divisors gets no padding at all (as in DLC).

An explicit ``position`` (``center``, ``top_left``, ``top_right``, ``bottom_left``,
``bottom_right``) is honoured exactly; predictions are then mapped back like DLC's
``RescaleAndOffset`` post-processor: ``p_frame = p_padded - (pad_left, pad_top)`` for
every output row (placeholder rows included, as DLC does), computed in float64 and stored
as float32.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AutoPadding", "InferenceTransform", "PaddingRunner", "PaddingPredictor",
           "OFFSET_KEY"]

# extra entry a PaddingRunner adds to a batch's outputs: (pad_left, pad_top) float64
OFFSET_KEY = "transform/offset"

_POSITIONS = ("center", "top_left", "top_right", "bottom_left", "bottom_right", "random")
_BORDERS = ("reflect_101", "constant")
# data.inference keys that only hold training augmentations: DLC would apply them (with
# random parameters) at inference if set, which mapose refuses rather than imitates
_AUGMENTATIONS = ("hflip", "affine", "random_bbox_transform", "crop_sampling", "hist_eq",
                  "motion_blur", "covering", "elastic_transform", "grayscale", "gaussian_noise")
# keys with no effect on bottom-up video inference
_IGNORED = ("collate", "top_down_crop")


def _pad_amount(size: int, minimum: int | None, divisor: int | None) -> tuple[int, int]:
    """albumentations' centred split of the padding of one axis: (before, after)."""
    if minimum is not None:
        total = max(minimum - size, 0)
        before = int(total / 2.0)
    else:
        rem = size % divisor
        total = divisor - rem if rem else 0
        before = total // 2
    return before, total - before


def _positive_or_none(name: str, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"data.inference.auto_padding.{name} must be a positive int or null; "
                         f"got {value!r}.")
    return int(value)


@dataclass(frozen=True)
class AutoPadding:
    """DLC's ``data.inference.auto_padding`` (albumentations ``PadIfNeeded``), deterministic.

    Parameters
    ----------
    pad_height_divisor, pad_width_divisor : int or None
        Pad each axis up to the next multiple (nothing if already divisible).
    min_height, min_width : int or None
        Alternatively pad each axis up to at least this size.  For each axis exactly one
        of ``min_*`` and ``pad_*_divisor`` is set (albumentations' rule).
    position : str
        Where the image sits in the padded frame: ``top_left`` (padding at the bottom and
        right), ``center``, ``top_right``, ``bottom_left``, ``bottom_right``.  DLC's
        ``random`` is mapped to ``top_left`` by :meth:`from_config` (see module notes).
    border_mode : {"reflect_101", "constant"}
        ``reflect_101`` mirrors without repeating the edge pixel (``cv2.BORDER_REFLECT_101``).
    border_value : float or sequence of 3 floats, optional
        Fill value (RGB) for ``constant``; 0 if None.
    """

    pad_height_divisor: int | None = 1
    pad_width_divisor: int | None = 1
    min_height: int | None = None
    min_width: int | None = None
    position: str = "top_left"
    border_mode: str = "reflect_101"
    border_value: object = None

    def __post_init__(self):
        for axis in ("height", "width"):
            if (getattr(self, f"min_{axis}") is None) == (getattr(self, f"pad_{axis}_divisor") is None):
                raise ValueError(
                    f"data.inference.auto_padding: set exactly one of min_{axis} and "
                    f"pad_{axis}_divisor (got min_{axis}={getattr(self, f'min_{axis}')!r}, "
                    f"pad_{axis}_divisor={getattr(self, f'pad_{axis}_divisor')!r}).")
        if self.position not in _POSITIONS[:-1]:
            raise ValueError(f"data.inference.auto_padding.position={self.position!r}; use one of "
                             f"{_POSITIONS}.")
        if self.border_mode not in _BORDERS:
            raise ValueError(f"data.inference.auto_padding.border_mode={self.border_mode!r} is not "
                             f"supported (DLC accepts {_BORDERS}).")

    @classmethod
    def from_config(cls, cfg: dict) -> "AutoPadding":
        """From the ``auto_padding`` mapping of ``pytorch_config.yaml`` (DLC's defaults:
        divisors 1, ``position: random`` -> ``top_left``, ``border_mode: reflect_101``)."""
        if not isinstance(cfg, dict):
            raise ValueError(f"data.inference.auto_padding must be a mapping such as "
                             f"{{pad_width_divisor: 32, pad_height_divisor: 32}}; got {cfg!r}.")
        known = {"min_height", "min_width", "pad_height_divisor", "pad_width_divisor",
                 "position", "border_mode", "border_value", "border_mask_value"}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"data.inference.auto_padding has unknown key(s) {unknown}; DLC "
                             f"accepts {sorted(known)}.")
        position = str(cfg.get("position", "random") or "random").lower()
        if position not in _POSITIONS:
            raise ValueError(f"data.inference.auto_padding.position={position!r}; use one of "
                             f"{_POSITIONS}.")
        return cls(
            pad_height_divisor=_positive_or_none("pad_height_divisor", cfg.get("pad_height_divisor", 1)),
            pad_width_divisor=_positive_or_none("pad_width_divisor", cfg.get("pad_width_divisor", 1)),
            min_height=_positive_or_none("min_height", cfg.get("min_height")),
            min_width=_positive_or_none("min_width", cfg.get("min_width")),
            position="top_left" if position == "random" else position,
            border_mode=str(cfg.get("border_mode", "reflect_101")),
            border_value=cfg.get("border_value"),
        )

    def pads(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(top, bottom, left, right)`` padding of a ``height`` x ``width`` frame."""
        top, bottom = _pad_amount(height, self.min_height, self.pad_height_divisor)
        left, right = _pad_amount(width, self.min_width, self.pad_width_divisor)
        vert, horiz = top + bottom, left + right
        if self.position == "center":
            return top, bottom, left, right
        top = vert if self.position.startswith("bottom") else 0
        left = horiz if self.position.endswith("right") else 0
        return top, vert - top, left, horiz - left

    def apply(self, frames: np.ndarray, pads: tuple[int, int, int, int], bgr: bool = True) -> np.ndarray:
        """Pad a uint8 batch ``(B, H, W, 3)`` by ``pads``; returns ``(B, H', W', 3)``.

        Uses ``cv2.copyMakeBorder`` (what albumentations calls), so borders are DLC's
        bit for bit.  ``bgr``: the frames are in OpenCV's BGR order (a per-channel
        ``border_value``, given in RGB, is reversed).
        """
        from mapose._optional import require

        cv2 = require("cv2", "padding frames")
        top, bottom, left, right = pads
        B, H, W, C = frames.shape
        out = np.empty((B, H + top + bottom, W + left + right, C), frames.dtype)
        if self.border_mode == "reflect_101":
            border, value = cv2.BORDER_REFLECT_101, None
        else:
            border = cv2.BORDER_CONSTANT
            value = self.border_value if self.border_value is not None else 0
            value = list(value)[::-1] if (bgr and np.ndim(value)) else value
        for b in range(B):
            cv2.copyMakeBorder(frames[b], top, bottom, left, right, border, dst=out[b],
                               value=value)
        return out


@dataclass(frozen=True)
class InferenceTransform:
    """What mapose applies before the network (besides in-graph normalisation).

    Attributes
    ----------
    padding : AutoPadding or None
    """

    padding: AutoPadding | None = None

    @classmethod
    def from_config(cls, pytorch_cfg: dict) -> "InferenceTransform":
        """Validate ``data.inference`` of a ``pytorch_config`` and build the transform.

        Raises
        ------
        ValueError
            A transform mapose does not apply (``resize``, ``longest_max_size``, training
            augmentations, ``normalize_images: false``, ``scale_to_unit_range: true``);
            the message names the key.
        """
        inf = (pytorch_cfg.get("data") or {}).get("inference")
        if inf is None:
            inf = {"normalize_images": True}  # DLC's bottom-up default
        if not isinstance(inf, dict):
            raise ValueError(f"pytorch_config data.inference must be a mapping; got {inf!r}.")
        where = "pytorch_config.yaml data.inference"
        for key in ("resize", "longest_max_size"):
            if inf.get(key):
                raise ValueError(
                    f"{where}.{key}={inf[key]!r}: resizing frames before the network is not "
                    f"supported by mapose; set {key}: null (the network then sees the frames at "
                    "their native size, DLC's default for bottom-up models) or resize the videos.")
        for key in _AUGMENTATIONS:
            if inf.get(key):
                raise ValueError(
                    f"{where}.{key}={inf[key]!r} is a random training augmentation; DLC would apply "
                    f"it at inference too. mapose does not: set {key}: null/false under "
                    "data.inference (keep it under data.train).")
        if not inf.get("normalize_images", False):
            raise ValueError(
                f"{where}.normalize_images={inf.get('normalize_images')!r}: mapose's networks "
                "always apply DLC's ImageNet normalisation; models trained without it are not "
                "supported. Set normalize_images: true if the model was trained with it.")
        if inf.get("scale_to_unit_range"):
            raise ValueError(
                f"{where}.scale_to_unit_range=true (pixels / 255 after normalisation) is not "
                "supported by mapose; set it to false if the model was trained without it.")
        known = set(_AUGMENTATIONS) | set(_IGNORED) | {"resize", "longest_max_size",
                                                        "auto_padding", "normalize_images",
                                                        "scale_to_unit_range"}
        unknown = sorted(k for k in inf if k not in known and inf[k])
        if unknown:
            raise ValueError(f"{where} has unknown transform key(s) {unknown}; mapose applies "
                             "auto_padding and normalize_images only.")
        pad = inf.get("auto_padding")
        return cls(AutoPadding.from_config(pad) if pad else None)

    def wrap(self, runner, predictor):
        """``(runner, predictor)`` applying this transform (unchanged when it pads nothing)."""
        if self.padding is None:
            return runner, predictor
        return PaddingRunner(runner, self.padding), PaddingPredictor(predictor)


class PaddingRunner:
    """Pads each batch before the wrapped runner and records the offset to map back.

    The outputs dict gets an extra entry :data:`OFFSET_KEY` = ``(pad_left, pad_top)``
    (float64), carried with the batch through the pipeline to :class:`PaddingPredictor`
    (so batches in flight never share state).
    """

    def __init__(self, runner, padding: AutoPadding, bgr: bool = True):
        self.runner = runner
        self.padding = padding
        self.bgr = bool(bgr)

    def __getattr__(self, name):  # engine, device, output_names, net, ...
        return getattr(self.runner, name)

    def _pad(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pads = self.padding.pads(int(frames.shape[1]), int(frames.shape[2]))
        if any(pads):
            frames = self.padding.apply(frames, pads, bgr=self.bgr)
        return frames, np.array([pads[2], pads[0]], np.float64)

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        frames, offset = self._pad(frames)
        outputs = dict(self.runner(frames))
        outputs[OFFSET_KEY] = offset
        return outputs

    def submit(self, frames: np.ndarray) -> "_PaddedBatch":
        """Pad ``frames`` and start them on the wrapped runner; ``result()`` is ``self(frames)``.

        Same semantics as :meth:`mapose.inference.runners.TorchRunner.submit`, so a padded
        model also gets a batch queued behind the running one.  The padding runs here, on
        the caller's thread (it is cheap next to the network); a wrapped runner without
        ``submit`` runs the batch here too, synchronously.
        """
        from mapose.inference.runners import _Done

        frames, offset = self._pad(frames)
        if getattr(type(self.runner), "submit", None) is not None:
            return _PaddedBatch(self.runner.submit(frames), offset)
        return _PaddedBatch(_Done(self.runner(frames)), offset)


class _PaddedBatch:
    """A padded batch in flight: the wrapped runner's pending result plus the offset."""

    __slots__ = ("_pending", "_offset")

    def __init__(self, pending, offset: np.ndarray):
        self._pending, self._offset = pending, offset

    def result(self) -> dict[str, np.ndarray]:
        outputs = dict(self._pending.result())
        outputs[OFFSET_KEY] = self._offset
        return outputs


class PaddingPredictor:
    """Runs the wrapped predictor on padded-frame outputs and maps the poses back.

    Identity scores are sampled by the wrapped predictor at padded-frame coordinates, as
    in DLC (its post-processor rescales after the identity lookup).
    """

    def __init__(self, predictor):
        self.predictor = predictor

    def __getattr__(self, name):  # identity, settings, ...
        return getattr(self.predictor, name)

    def __call__(self, outputs: dict[str, np.ndarray]):
        outputs = dict(outputs)
        offset = outputs.pop(OFFSET_KEY, None)
        preds = self.predictor(outputs)
        if offset is None or not offset.any():
            return preds
        for pred in preds:
            pred.poses = _shift(pred.poses, offset)
            if pred.unique is not None:
                pred.unique = _shift(pred.unique, offset)
        return preds


def _shift(arr: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """``arr[..., :2] - offset`` for every row (DLC: ``p * 1.0 + (-pad)`` in float64)."""
    out = arr.copy()
    out[..., :2] = arr[..., :2].astype(np.float64) - offset
    return out
