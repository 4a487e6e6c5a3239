"""The maps a run keeps from its forwards: mean, end of the guidance window, last steps."""

from __future__ import annotations

import math

import numpy as np
import torch

from starvid.attention import MapAccumulator
from starvid.guidance import GuidanceTargets, inbox_share


def maps_numpy(maps: torch.Tensor, labels: dict[str, list[int]]) -> dict[str, np.ndarray]:
    """Label -> ``(F, h, w)``: each label's token columns of ``maps`` summed."""
    m = maps.detach().float()
    return {
        k: m[:, c].sum(1).cpu().numpy() if c else np.zeros_like(m[:, 0].cpu().numpy())
        for k, c in labels.items()
    }


class RunMaps:
    """Layer-averaged conditional maps of a run's denoising steps, kept three ways.

    Args:
        steps: the run's denoising steps.
        guidance_steps: the guidance window (its last step's maps are kept).
        final_fraction: the share of the last steps ``inbox_share_final`` reads.
        frames: the video's frames (shares are NaN per frame when nothing was kept).
    """

    def __init__(self, steps: int, guidance_steps: int, final_fraction: float, frames: int):
        self.steps, self.frames = steps, frames
        self.window_end = min(guidance_steps, steps) - 1 if guidance_steps else 0
        self.n_final = max(1, math.ceil(final_fraction * steps))
        self.all, self.final = MapAccumulator(), MapAccumulator()  # every step, the last steps
        self.window = None

    def keep(self, i: int, maps: torch.Tensor) -> None:
        """Keep step ``i``'s maps ``(F, tokens, h, w)``."""
        self.all.add(maps)
        if i == self.window_end:
            self.window = maps.detach().float()
        if i >= self.steps - self.n_final:
            self.final.add(maps)

    def mean(self, labels: dict[str, list[int]]) -> dict[str, np.ndarray]:
        """Label -> maps averaged over every step."""
        return {} if not self.all.count else maps_numpy(self.all.mean(), labels)

    def at_window_end(self, labels: dict[str, list[int]]) -> dict[str, np.ndarray]:
        """Label -> maps of the guidance window's last step."""
        return {} if self.window is None else maps_numpy(self.window, labels)

    def share_window(self, targets: GuidanceTargets, objects: int) -> np.ndarray:
        """``(objects, F)`` in-box shares at the end of the guidance window."""
        if self.window is None:
            return np.full((objects, self.frames), np.nan)
        return inbox_share(self.window, targets)

    def share_final(self, targets: GuidanceTargets, objects: int) -> np.ndarray:
        """``(objects, F)`` in-box shares over the last steps."""
        if not self.final.count:
            return np.full((objects, self.frames), np.nan)
        return inbox_share(self.final.mean(), targets)
