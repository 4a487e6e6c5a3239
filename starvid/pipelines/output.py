"""What a StarVid pipeline call returns, and the per-step progress it reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from diffusers.utils import BaseOutput

from starvid.errors import StarVidError
from starvid.recording import AttentionRecording


class Cancelled(StarVidError):
    """The run was cancelled through its ``cancel`` event."""


@dataclass
class StepProgress:
    """Reported after every denoising step of a run."""

    run: str  # "guided" or "baseline"
    step: int  # finished steps, 1..total
    total: int
    losses: dict[str, float] | None  # the step's last gradient iteration, if it was guided
    maps: dict[str, np.ndarray]  # label -> (F, h, w) of the step's conditional pass


ProgressFn = Callable[[StepProgress], None]


@dataclass
class StarVidPipelineOutput(BaseOutput):
    """One generation: frames, per-word heat maps, losses, in-box shares, cost.

    Args:
        frames: ``(F, H, W, 3)`` uint8.
        maps: label -> ``(F, h, w)``, mean over every step's conditional pass.
        maps_window: label -> ``(F, h, w)``, the last step of the guidance window.
        losses: one row per gradient iteration (raw, weighted, shares, update size).
        inbox_share: ``(objects, F)``, end of the guidance window.
        inbox_share_final: ``(objects, F)``, the last steps.
        labels: heat-map label -> what it names (``{"kind", "subject"}``); the UI draws a
            label's boxes from it, so the labelling rule lives in the engine only.
        attention: every prompt token at every layer and step (``starvid.recording``), when
            the settings' ``record_attention`` asked for it.
    """

    frames: np.ndarray
    maps: dict[str, np.ndarray]
    maps_window: dict[str, np.ndarray]
    losses: list[dict[str, float]]
    inbox_share: np.ndarray
    inbox_share_final: np.ndarray
    timing_s: float
    peak_memory_mb: float
    working_memory_mb: float
    warnings: list[str]
    guided: bool
    object_ids: list[str] = field(default_factory=list)
    labels: dict[str, dict] = field(default_factory=dict)
    attention: AttentionRecording | None = None  # the debugger's, with record_attention=full


# The name the run layer and the Studio used before the pipelines existed.
VideoResult = StarVidPipelineOutput
