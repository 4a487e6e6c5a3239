"""Box geometry shared by the planners, the editor and the evaluation: one IoU.

Boxes are ``[x0, y0, x1, y1]`` (any unit; the plan's are fractions of the frame). NumPy only, so
planning and the command line stay light.
"""

from __future__ import annotations

import numpy as np


def box_iou(a, b) -> np.ndarray:
    """IoU of every pair of ``[x0, y0, x1, y1]`` boxes: a ``(N, 4)`` against b ``(M, 4)`` ->
    ``(N, M)``; 0 where both boxes are empty."""
    a, b = np.asarray(a, float)[:, None, :], np.asarray(b, float)[None]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou(a, b) -> float:
    """IoU of two boxes (0 when both are empty)."""
    return float(box_iou([a], [b])[0, 0])
