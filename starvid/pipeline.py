"""One generation on a loaded backbone, and the memory a gradient iteration keeps.

The denoising loop itself is the pipelines' ``__call__`` (``starvid.pipelines``); ``generate``
is the run layer's way to call it with resolved inputs, and the names the Studio and older code
import from here (``Cancelled``, ``StepProgress``, ``VideoResult``) are the pipelines'.
"""

from __future__ import annotations

import threading

from starvid.attention import AttentionStore, select_layers
from starvid.checkpointing import activation_bytes
from starvid.parsing import ParsedPrompt
from starvid.pipelines import (
    RUN_LOCK,
    Cancelled,
    ProgressFn,
    StarVidMixin,
    StarVidPipelineOutput,
    StepProgress,
    VideoResult,
)
from starvid.plan import Plan
from starvid.settings import ResolvedSettings
from starvid.targets import build_targets

__all__ = [
    "Cancelled",
    "ProgressFn",
    "StepProgress",
    "VideoResult",
    "generate",
    "iteration_activation_bytes",
]


def generate(
    pipe: StarVidMixin,
    parsed: ParsedPrompt,
    plan: Plan,
    settings: ResolvedSettings,
    guided: bool = True,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    record: bool = True,
) -> StarVidPipelineOutput:
    """One video of ``parsed.prompt`` with ``pipe`` (see ``StarVidMixin.__call__``).

    Args:
        pipe: a StarVid pipeline (what ``load_backbone`` returns).
        parsed, plan, settings: resolved at the edge (``starvid.run.prepare_run``).
        guided: StarVid's updates; False: the same-seed baseline.
        progress: gets a ``StepProgress`` after every step.
        cancel: set it to stop the run at its next step (``Cancelled`` is raised).
        record: False (baselines only) runs without recording, as a cost reference.

    Returns:
        The pipeline's output: frames, maps, losses, in-box shares, cost.
    """
    return pipe(
        parsed, plan, settings, guided=guided, record=record, callback=progress, cancel=cancel
    )


def iteration_activation_bytes(
    pipe: StarVidMixin, parsed: ParsedPrompt, plan: Plan, settings: ResolvedSettings
) -> int:
    """Bytes of activations one gradient iteration keeps for its backward pass.

    The bulk of guidance's extra memory. With a pipeline on the meta device nothing is computed:
    a full-size model is sized in seconds on any machine.
    """
    s = settings
    words = build_targets(pipe.tokenizer, parsed, plan, s.spatial_words, s.syntax_words)
    store = AttentionStore(words.positions, select_layers(pipe.unet, s.record_layers))
    pipe.scheduler.set_timesteps(s.steps)
    device = pipe.unet.device
    latents = pipe.seeded_latents(s, device)
    cond, _ = pipe.encode_prompt(parsed.prompt, device, 1, False)
    cond = pipe.embeds_per_frame(cond, s.frames)
    t = pipe.scheduler.timesteps[0]
    with RUN_LOCK:  # swaps the shared U-Net's processors, as a run does
        return activation_bytes(pipe.unet, store, latents, t, cond, s.checkpointing)
