"""Peak finding, location refinement and PAF costs for bottom-up pose networks.

Typed gateway over :mod:`mapose._cy.peaks`.  Semantics are DeepLabCut 3's
``PartAffinityFieldPredictor`` / ``HeatmapPredictor`` (PyTorch engine):

1. ``S = sigmoid(heatmap)`` (when ``apply_sigmoid``), smoothed by a normalised Gaussian
   (kernel 2r+1, zero padding); confidences are read from the *smoothed* map.
2. A pixel is a peak iff it equals the r x r max-pool of the smoothed map (stride 1,
   padding r//2) and is ``>= threshold`` (0.01 in DLC).
3. ``x = stride * col + center + locref_x * locref_std`` (same for y), with
   ``center = floor(stride / 2)`` for PAF models.
4. PAF affinity of a candidate pair: 10-point line integral on the heatmap grid
   (truncated sample points, per-component trapezoids), norm / length, rounded to 3
   decimals; ``distance`` = length on the grid, rounded too.

Peaks are ordered by (image, bodypart, row, col), which fixes candidate indices for the
assembler.  Every array stays float32.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mapose._cy import load

_pk = load("peaks")

__all__ = ["Peaks", "find_peaks", "paf_costs", "heatmap_argmax", "torch_linspace"]


@dataclass(frozen=True)
class Peaks:
    """Peaks of a batch of heatmaps.

    Attributes
    ----------
    offsets : ndarray of shape (B * K + 1,), int64
        Peaks of image b, bodypart k are ``slice(offsets[b*K+k], offsets[b*K+k+1])``.
    rows, cols : ndarray of shape (n,), int32
        Heatmap-grid position of each peak.
    xy : ndarray of shape (n, 2), float32
        Refined coordinates in network-input pixels.
    conf : ndarray of shape (n,), float32
        Smoothed heatmap value at the peak.
    n_images, n_bodyparts : int
    """

    offsets: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    xy: np.ndarray
    conf: np.ndarray
    n_images: int
    n_bodyparts: int

    def span(self, image: int, bodypart: int) -> slice:
        o = self.offsets[image * self.n_bodyparts + bodypart]
        return slice(int(o), int(self.offsets[image * self.n_bodyparts + bodypart + 1]))

    def image_lists(self, image: int):
        """Per-bodypart coordinates (n_k, 2) and confidences (n_k, 1) for one image."""
        coords, confs = [], []
        for k in range(self.n_bodyparts):
            s = self.span(image, k)
            coords.append(self.xy[s])
            confs.append(self.conf[s].reshape(-1, 1))
        return coords, confs


def _as_maps(name, arr, ndim=4):
    if arr is None:
        raise TypeError(f"{name} must be an array, got None.")
    a = np.asarray(arr)
    if a.ndim == ndim - 1:
        a = a[None]
    if a.ndim != ndim:
        raise ValueError(f"{name} must have shape (batch, channels, height, width); got {a.shape}.")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers; got dtype {a.dtype}.")
    return np.ascontiguousarray(a, dtype=np.float32)


def _check_stride(stride):
    stride = float(stride)
    if not math.isfinite(stride) or stride <= 0:
        raise ValueError(f"stride must be a positive number (model stride, e.g. 4.0); got {stride!r}.")
    return stride


def find_peaks(heatmap, locref=None, *, stride: float, nms_radius: int = 5, sigma: float = 1.0,
               threshold: float = 0.01, locref_std: float = 7.2801, apply_sigmoid: bool = True,
               center: str = "floor") -> Peaks:
    """Find heatmap peaks as DLC's PartAffinityFieldPredictor does.

    Parameters
    ----------
    heatmap : array_like of shape (B, K, h, w) or (K, h, w)
        Heatmap logits (or probabilities with ``apply_sigmoid=False``).
    locref : array_like of shape (B, 2K, h, w), optional
        Location refinement, channel 2k = x offset and 2k+1 = y offset of bodypart k.
    stride : float
        Model stride (input pixels per heatmap cell).
    nms_radius : int, default 5
        Gaussian kernel half-width (kernel 2r+1) and max-pool window (r x r).  DLC needs it
        odd; for even r the window is [i - r//2, i + r//2 - 1] (DLC crashes there).
    sigma : float, default 1.0
        Gaussian sigma, > 0.
    threshold : float, default 0.01
        Minimum smoothed score of a peak.
    locref_std : float, default 7.2801
    apply_sigmoid : bool, default True
    center : {"floor", "half"}
        Cell-centre offset ``floor(stride/2)`` (PAF models) or ``stride/2``.

    Returns
    -------
    Peaks
    """
    hm = _as_maps("heatmap", heatmap)
    stride = _check_stride(stride)
    if isinstance(nms_radius, bool) or int(nms_radius) != nms_radius or nms_radius < 1:
        raise ValueError(f"nms_radius must be a positive integer (DLC uses 5); got {nms_radius!r}.")
    nms_radius = int(nms_radius)
    if not (float(sigma) > 0 and math.isfinite(float(sigma))):
        raise ValueError(f"sigma must be a positive number (DLC uses 1.0); got {sigma!r}.")
    if center not in ("floor", "half"):
        raise ValueError(f"center must be 'floor' or 'half'; got {center!r}.")
    B, K, h, w = hm.shape
    if locref is not None:
        lr = _as_maps("locref", locref)
        if lr.shape != (B, 2 * K, h, w):
            raise ValueError(
                f"locref must have shape (B, 2K, h, w) = {(B, 2 * K, h, w)} to match heatmap "
                f"{hm.shape}; got {lr.shape}."
            )
    else:
        lr = np.zeros((1, 1, 1, 1), np.float32)
    offset = math.floor(stride / 2) if center == "floor" else stride / 2
    weights = _pk.gaussian_weights(nms_radius, float(sigma))
    if hm.size == 0:
        return Peaks(np.zeros(B * K + 1, np.int64), np.empty(0, np.int32), np.empty(0, np.int32),
                     np.empty((0, 2), np.float32), np.empty(0, np.float32), B, K)
    off, rows, cols, xy, conf = _pk.find_peaks(
        hm, lr, locref is not None, bool(apply_sigmoid), nms_radius, weights, float(threshold),
        stride, float(offset), float(locref_std))
    return Peaks(off, rows, cols, xy, conf, B, K)


def torch_linspace(n: int) -> np.ndarray:
    """``torch.linspace(0, 1, n)`` in float32 as ``float32(1/(n-1)) * i``.

    This equals torch's CPU result bit for bit for DLC's ``n = 10``; torch's vectorised
    kernel rounds a few elements differently for some other ``n`` (1 ulp), which only
    matters when a sample point lands exactly on an integer boundary.
    """
    if n < 2:
        return np.zeros(max(n, 0), np.float32)
    step = np.float32(1.0) / np.float32(n - 1)
    return (step * np.arange(n, dtype=np.float32)).astype(np.float32)


def _check_graph(graph, edges_to_keep, n_bodyparts):
    g = np.asarray(graph, dtype=np.int64).reshape(-1, 2) if len(graph) else np.empty((0, 2), np.int64)
    if g.size and (g.min() < 0 or g.max() >= n_bodyparts):
        raise ValueError(f"graph refers to bodypart indices outside 0..{n_bodyparts - 1}: {g.tolist()}.")
    if edges_to_keep is None:
        e = np.arange(len(g), dtype=np.int64)
    else:
        e = np.asarray(list(edges_to_keep), dtype=np.int64).reshape(-1)
    if e.size and (e.min() < 0 or e.max() >= len(g)):
        raise ValueError(f"edges_to_keep must index the graph (0..{len(g) - 1}); got {e.tolist()}.")
    return np.ascontiguousarray(g), np.ascontiguousarray(e)


def paf_costs(paf, peaks: Peaks, graph, edges_to_keep=None, n_points: int = 10) -> list[dict]:
    """DLC's PAF edge costs for every image of a batch.

    Parameters
    ----------
    paf : array_like of shape (B, 2L, h, w)
        Channel 2e = x component, 2e+1 = y component of graph edge e (full graph).
    peaks : Peaks
        From :func:`find_peaks` on the same batch.
    graph : sequence of (int, int), length L
    edges_to_keep : sequence of int, optional
        Edge indices to score (default: all).
    n_points : int, default 10

    Returns
    -------
    list of dict, one per image
        ``{edge: {"m1": (n_a, n_b) float32, "distance": (n_a, n_b) float32}}`` for the kept
        edges whose two bodyparts both have peaks (DLC omits the others).
    """
    p = _as_maps("paf", paf)
    B = peaks.n_images
    g, e = _check_graph(graph, edges_to_keep, peaks.n_bodyparts)
    if p.shape[0] != B:
        raise ValueError(f"paf has {p.shape[0]} images but peaks were found on {B}.")
    if p.shape[1] < 2 * len(g):
        raise ValueError(f"paf has {p.shape[1]} channels; the graph with {len(g)} edges needs {2 * len(g)}.")
    if int(n_points) < 2:
        raise ValueError(f"n_points must be >= 2; got {n_points!r}.")
    out: list[dict] = [{} for _ in range(B)]
    if B == 0 or len(e) == 0:
        return out
    index, m1, dist = _pk.paf_costs(p, peaks.offsets, peaks.rows, peaks.cols, g, e,
                                    int(n_points), torch_linspace(int(n_points)))
    for b, edge, na, nb, start in index.tolist():
        stop = start + na * nb
        out[b][edge] = {"m1": m1[start:stop].reshape(na, nb),
                        "distance": dist[start:stop].reshape(na, nb)}
    return out


def heatmap_argmax(heatmap, locref=None, *, stride: float, locref_std: float = 7.2801,
                   apply_sigmoid: bool = False, clip_scores: bool = True) -> np.ndarray:
    """DLC's HeatmapPredictor: one prediction (first arg-max) per channel.

    Returns
    -------
    ndarray of shape (B, K, 3), float32
        ``x = stride*col + stride/2 + locref_x*locref_std``, ``y`` likewise, score.
    """
    hm = _as_maps("heatmap", heatmap)
    stride = _check_stride(stride)
    B, K, h, w = hm.shape
    if h == 0 or w == 0:
        raise ValueError(f"heatmap has an empty spatial size {hm.shape[2:]}.")
    if locref is not None:
        lr = _as_maps("locref", locref)
        if lr.shape != (B, 2 * K, h, w):
            raise ValueError(f"locref must have shape {(B, 2 * K, h, w)}; got {lr.shape}.")
    else:
        lr = np.zeros((1, 1, 1, 1), np.float32)
    return _pk.heatmap_argmax(hm, lr, locref is not None, bool(apply_sigmoid), bool(clip_scores),
                              stride, stride / 2, float(locref_std))
