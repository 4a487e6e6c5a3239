"""Boxes to masks: per object and frame, at any resolution (the attention maps run at 4x4..64x64).

A pixel belongs to a box when its centre lies inside the box (hard masks), or by the fraction
of its area the box covers (coverage masks: what the losses and the in-box shares read). A box
smaller than a pixel still covers the pixel that holds its centre, so every object keeps some
mask at the coarsest attention resolution.
"""

from __future__ import annotations

import numpy as np
import torch

from starvid.errors import StarVidError
from starvid.plan import Plan


def boxes_to_masks(
    boxes: torch.Tensor | np.ndarray,
    height: int,
    width: int,
    coverage: bool = False,
    mark_centre: bool = True,
) -> torch.Tensor:
    """Masks for boxes of shape ``(..., 4)`` (fractions, ``[x0, y0, x1, y1]``): ``(..., h, w)``.

    Float32 in [0, 1]; with ``mark_centre`` the pixel holding each box centre is always 1.
    ``coverage`` (instead of hard): each pixel's value is the fraction of its area inside the box
    (exact areas with ``mark_centre=False``).
    """
    if height < 1 or width < 1:
        raise StarVidError(f"mask size must be at least 1x1, got {height}x{width}")
    b = torch.as_tensor(boxes, dtype=torch.float32)
    lead = b.shape[:-1]
    b = b.reshape(-1, 4)
    # box edges in pixel units; pixel j covers [j, j + 1) and has its centre at j + 0.5
    x0, x1 = b[:, 0:1] * width, b[:, 2:3] * width
    y0, y1 = b[:, 1:2] * height, b[:, 3:4] * height
    xc = torch.arange(width, dtype=torch.float32)[None] + 0.5
    yc = torch.arange(height, dtype=torch.float32)[None] + 0.5
    if coverage:
        cells_x, cells_y = xc - 0.5, yc - 0.5
        mx = (torch.minimum(x1, cells_x + 1) - torch.maximum(x0, cells_x)).clamp(0, 1)
        my = (torch.minimum(y1, cells_y + 1) - torch.maximum(y0, cells_y)).clamp(0, 1)
    else:
        mx = ((xc >= x0) & (xc < x1)).float()
        my = ((yc >= y0) & (yc < y1)).float()
    masks = my[:, :, None] * mx[:, None, :]  # (N, h, w)
    if mark_centre:  # the centre's pixel, so tiny boxes do not vanish at coarse resolutions
        cx = ((x0 + x1) / 2).floor().long().clamp(0, width - 1).squeeze(1)
        cy = ((y0 + y1) / 2).floor().long().clamp(0, height - 1).squeeze(1)
        masks[torch.arange(len(b)), cy, cx] = 1.0
    return masks.reshape(*lead, height, width)


def plan_masks(
    plan: Plan,
    frames: int | None = None,
    height: int = 64,
    width: int = 64,
    device: torch.device | str | None = None,
    coverage: bool = False,
) -> torch.Tensor:
    """Masks of every object in every frame: ``(objects, frames, height, width)``, float32.

    ``frames`` other than ``plan.frames`` resamples the trajectories in time first. Hard masks
    by default; ``coverage`` as in :func:`boxes_to_masks`.
    """
    if frames is not None and frames != plan.frames:
        plan = plan.resample(frames)
    masks = boxes_to_masks(plan.boxes_array(), height, width, coverage=coverage)
    return masks.to(device) if device is not None else masks


def noun_masks(
    plan: Plan,
    frames: int | None = None,
    height: int = 64,
    width: int = 64,
    device: torch.device | str | None = None,
    coverage: bool = False,
) -> dict[int, torch.Tensor]:
    """Instance masks grouped by subject index: ``{subject: (instances, frames, h, w)}``.

    Instances keep their order in the plan; subjects appear in order of first use.
    """
    masks = plan_masks(plan, frames, height, width, device, coverage)
    groups: dict[int, list[int]] = {}
    for i, obj in enumerate(plan.objects):
        groups.setdefault(obj.subject, []).append(i)
    return {s: masks[idx] for s, idx in groups.items()}
