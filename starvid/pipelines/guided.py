"""StarVid's guided updates: the gradient iterations that steer the latents of a guided step."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from starvid.attention import GRADIENT_PASS, AttentionStore
from starvid.checkpointing import checkpointed_layers
from starvid.guidance import (
    TERMS,
    GuidanceTargets,
    hold_update_size,
    latent_step,
    loss_terms,
    map_gradients,
    rms,
    term_normalizers,
    term_values,
    update_shares,
)
from starvid.settings import ResolvedSettings


def noise_scale(scheduler, t, schedule: str) -> float:
    """The update's noise-level factor at timestep ``t``: ``sqrt(1 - alpha_bar)`` or 1."""
    if schedule == "constant":
        return 1.0
    ac = getattr(scheduler, "alphas_cumprod", None)
    if ac is None:
        return 1.0
    return float(torch.sqrt(1.0 - ac[int(t)]))


@dataclass
class StepScale:
    """What the first iteration of a guided step measured: each term's normalizer and the size
    (RMS) of its weighted update, which the step's later iterations keep."""

    norms: dict[str, float]
    size: float


class GuidedUpdates:
    """The gradient iterations of one run's guided steps, and what they logged.

    Each iteration: a conditional forward (stopped after the last recorded layer) records the
    maps with their graph, and the loss terms are computed on them. At the first iteration of a
    step each weighted term's gradient is carried back to the latents on its own: that gives
    its normalizer (``normalize_grad="per_term"``: each term at its own RMS, so a weight scales
    its own pull) and its share of the update, logged so an inert term shows at once. Later
    iterations carry the normalized, weighted sum back in one pass and keep the first update's
    size (``hold_update_size``): the terms shrink as they are met, and updates that shrank with
    them would leave counts and binding half done (docs/results.md).

    Args:
        unet: the pipeline's U-Net, with the recorders installed.
        scheduler: the run's scheduler (timesteps set).
        forward: ``forward(latents, t)`` runs the conditional U-Net pass for the maps.
        store: the recorders' store.
        targets: what the losses pull where.
        settings: the run's resolved settings.
        check_cancel: raises ``Cancelled`` when the run was cancelled.
    """

    def __init__(
        self,
        unet,
        scheduler,
        forward: Callable[[torch.Tensor, torch.Tensor], None],
        store: AttentionStore,
        targets: GuidanceTargets,
        settings: ResolvedSettings,
        check_cancel: Callable[[], None],
    ):
        self.unet, self.scheduler, self.forward, self.store = unet, scheduler, forward, store
        self.targets, self.s, self.check_cancel = targets, settings, check_cancel
        self.weights = {"spatial": settings.spatial_weight, "syntax": settings.syntax_weight}
        self.losses: list[dict[str, float]] = []
        self.warnings: list[str] = []

    def step(self, latents: torch.Tensor, t, index: int) -> tuple[torch.Tensor, dict | None]:
        """``iterations`` updates of the latents at denoising step ``index``.

        Returns:
            The updated latents and the step's last logged loss row (None when nothing ran).
        """
        s = self.s
        scale = noise_scale(self.scheduler, t, s.step_schedule)
        latest, scale_of_step = None, None
        mode = GRADIENT_PASS if s.stop_early else GRADIENT_PASS.without_early_stop()
        with self.store.mode(mode), checkpointed_layers(self.unet, self.store, s.checkpointing):
            for it in range(s.iterations):
                self.check_cancel()
                z = latents.detach().requires_grad_(True)
                with torch.enable_grad():
                    grad, scale_of_step, latest = self._gradient(z, t, index, it, scale_of_step)
                if grad is None:
                    break
                update, problem = latent_step(
                    grad, s.step_size, s.normalize_grad, s.max_grad_norm, scale
                )
                if update is None:
                    self.warnings.append(f"step {index}: {problem}")
                    break
                if s.step_size * scale > 0:
                    self.losses[-1]["update_size"] = rms(update) / (s.step_size * scale)
                latents = (latents - update).detach()
        self.store.reset()
        return latents, latest

    def _gradient(self, z, t, index: int, it: int, step_scale: StepScale | None):
        """(weighted gradient w.r.t. the latents or None, the step's scale, the logged row).

        ``step_scale`` is None at the first iteration of a step, which measures it."""
        s = self.s
        self.forward(z, t)
        maps = self.store.layer_mean()
        terms = loss_terms(
            maps,
            self.targets,
            s.adjacent_frames,
            s.distance,
            s.temperature,
            s.spatial_form,
            s.syntax_form,
            s.syntax_margin,
        )
        row = {"step": index, "iteration": it, **term_values(terms, self.weights)}
        self.losses.append(row)
        if not math.isfinite(row["total"]) or not all(
            math.isfinite(row[f"{n}_raw"]) for n in TERMS
        ):
            self.warnings.append(f"step {index}: non-finite loss (NaN/Inf); latent update skipped")
            return None, step_scale, row
        weighted = {n for n, w in self.weights.items() if w}
        if not maps.requires_grad or not weighted & set(terms):
            return None, step_scale, row  # nothing to steer (no objects with tokens, zero weights)
        if step_scale is None:  # first iteration of the step: every term on its own
            grads = map_gradients(maps, terms)
            latent = {
                n: torch.autograd.grad(maps, z, g, retain_graph=True)[0] for n, g in grads.items()
            }
            norms = term_normalizers(latent, s.normalize_grad)
            row.update(update_shares(latent, self.weights, norms))
            grad = sum(self.weights[n] / norms[n] * g for n, g in latent.items())
            return grad, StepScale(norms, rms(grad)), row
        grads = map_gradients(maps, terms, weighted)
        norms = step_scale.norms
        combined = sum(self.weights[n] / norms[n] * g for n, g in grads.items())
        (grad,) = torch.autograd.grad(maps, z, combined)
        if s.normalize_grad == "per_term":
            grad = hold_update_size(grad, step_scale.size)
        return grad, step_scale, row
