"""The StarVid denoising loop: guided (latent updates from attention losses) and baseline.

Reads top to bottom like a diffusers pipeline: encode the prompt (CLIP, unconditional "" first),
prepare seeded latents ``(1, C, F, h, w)``, loop over the scheduler's timesteps, decode each frame
with the VAE. During the first ``guidance_steps`` steps each step starts with ``iterations``
gradient iterations on the latents (``Guidance``), using the conditional branch only and stopping
the U-Net forward after the last recorded layer (only the maps are needed there); then the
ordinary CFG step runs without gradients and records the maps of its conditional half for the
heat maps and the in-box shares.

``generate`` takes resolved inputs only (a ``ParsedPrompt``, a ``Plan`` with as many frames as
the settings, ``ResolvedSettings``): everything is normalized once, at the edge
(``starvid.run``). Cancellation: ``cancel`` (a ``threading.Event``) is checked before every
U-Net forward; when set, ``generate`` raises ``Cancelled`` and nothing partial is returned.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from starvid.attention import AttentionStore, forward_for_maps, install_recorders, select_layers
from starvid.checkpointing import activation_bytes, checkpointed_layers
from starvid.errors import StarVidError
from starvid.guidance import (
    TERMS,
    GuidanceTargets,
    hold_update_size,
    inbox_share,
    latent_step,
    loss_terms,
    map_gradients,
    rms,
    term_normalizers,
    term_values,
    update_shares,
)
from starvid.memory import PeakMemory
from starvid.parsing import ParsedPrompt
from starvid.plan import Plan
from starvid.settings import ResolvedSettings
from starvid.targets import RunTargets, build_targets
from starvid.threads import choose_threads, torch_threads

# Backbones are shared and recording swaps the U-Net's processors: one run at a time.
RUN_LOCK = threading.RLock()


class Cancelled(StarVidError):
    """The run was cancelled through its ``cancel`` event."""


@dataclass
class StepProgress:
    """Reported after every denoising step of a run."""

    run: str  # "guided" or "baseline"
    step: int  # finished steps, 1..total
    total: int
    losses: dict[str, float] | None  # the step's last gradient iteration, if it was guided
    maps: dict[str, np.ndarray]  # word -> (F, h, w) of the step's conditional pass


ProgressFn = Callable[[StepProgress], None]


@dataclass
class VideoResult:
    """One generation: frames, per-word heat maps, losses, in-box shares, cost."""

    frames: np.ndarray  # (F, H, W, 3) uint8
    maps: dict[str, np.ndarray]  # word -> (F, h, w), mean over every step's conditional pass
    maps_window: dict[str, np.ndarray]  # word -> (F, h, w), last step of the guidance window
    losses: list[dict[str, float]]
    inbox_share: np.ndarray  # (objects, F), end of the guidance window
    inbox_share_final: np.ndarray  # (objects, F), last steps
    timing_s: float
    peak_memory_mb: float
    working_memory_mb: float
    warnings: list[str]
    guided: bool
    object_ids: list[str] = field(default_factory=list)


# -- building blocks --------------------------------------------------------------------------


def encode_prompt(backbone, prompt: str) -> torch.Tensor:
    """CLIP embeddings ``(2, 77, D)``: unconditional ("") first, then the prompt."""
    tok = backbone.tokenizer
    ids = tok(
        ["", prompt],
        padding="max_length",
        max_length=tok.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids.to(backbone.device)
    with torch.no_grad():
        return backbone.text_encoder(ids)[0].to(backbone.dtype)


def prepare_latents(backbone, settings: ResolvedSettings, scheduler) -> torch.Tensor:
    """Seeded noise ``(1, C, F, h, w)`` drawn on the CPU (same on every device), scaled."""
    f = backbone.vae_scale_factor
    shape = (
        1,
        backbone.unet.config.in_channels,
        settings.frames,
        settings.height // f,
        settings.width // f,
    )
    gen = torch.Generator("cpu").manual_seed(settings.seed)
    latents = torch.randn(shape, generator=gen, dtype=torch.float32)
    latents = latents.to(backbone.device, backbone.dtype)
    return latents * scheduler.init_noise_sigma


def decode_latents(backbone, latents: torch.Tensor, chunk: int = 8) -> np.ndarray:
    """Decode ``(1, C, F, h, w)`` latents frame by frame to uint8 frames ``(F, H, W, 3)``."""
    vae = backbone.vae
    z = latents[0].permute(1, 0, 2, 3) / vae.config.scaling_factor
    out = []
    with torch.no_grad():
        for i in range(0, z.shape[0], chunk):
            img = vae.decode(z[i : i + chunk].to(vae.dtype)).sample.float()
            img = ((img / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
            out.append(img.permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out)


def _step_scheduler(scheduler, noise: torch.Tensor, t, latents: torch.Tensor) -> torch.Tensor:
    # diffusers' video pipelines step on (B*F, C, h, w); keep that layout for every scheduler.
    b, c, f, h, w = latents.shape
    flat = lambda x: x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)  # noqa: E731
    out = scheduler.step(flat(noise), t, flat(latents)).prev_sample
    return out.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


def _noise_scale(scheduler, t, schedule: str) -> float:
    if schedule == "constant":
        return 1.0
    ac = getattr(scheduler, "alphas_cumprod", None)
    if ac is None:
        return 1.0
    return float(torch.sqrt(1.0 - ac[int(t)]))


def _maps_numpy(maps: torch.Tensor, labels: dict[str, list[int]]) -> dict[str, np.ndarray]:
    m = maps.detach().float()
    return {
        k: m[:, c].sum(1).cpu().numpy() if c else np.zeros_like(m[:, 0].cpu().numpy())
        for k, c in labels.items()
    }


# -- guidance ---------------------------------------------------------------------------------


@dataclass
class StepScale:
    """What the first iteration of a guided step measured: each term's normalizer and the size
    (RMS) of its weighted update, which the step's later iterations keep."""

    norms: dict[str, float]
    size: float


class Guidance:
    """The gradient iterations of one run's guided steps, and what they logged.

    Each iteration: a conditional forward (stopped after the last recorded layer) records the
    maps with their graph, and the loss terms are computed on them. At the first iteration of a
    step each weighted term's gradient is carried back to the latents on its own: that gives
    its normalizer (``normalize_grad="per_term"``: each term at its own RMS, so a weight scales
    its own pull) and its share of the update, logged so an inert term shows at once. Later
    iterations carry the normalized, weighted sum back in one pass and keep the first update's
    size (``hold_update_size``): the terms shrink as they are met, and updates that shrank with
    them left counts and binding half done (held-out numeracy 56 % against 75 %).
    """

    def __init__(self, unet, scheduler, cond, store, targets: GuidanceTargets, s, check_cancel):
        self.unet, self.scheduler, self.cond, self.store = unet, scheduler, cond, store
        self.targets, self.s, self.check_cancel = targets, s, check_cancel
        self.weights = {"spatial": s.spatial_weight, "syntax": s.syntax_weight}
        self.losses: list[dict[str, float]] = []
        self.warnings: list[str] = []

    def step(self, latents: torch.Tensor, t, index: int) -> tuple[torch.Tensor, dict | None]:
        """``s.iterations`` updates of the latents at denoising step ``index``."""
        store, s = self.store, self.s
        store.keep_grad, store.stop_early, store.skip_uncond = True, s.stop_early, False
        scale = _noise_scale(self.scheduler, t, s.step_schedule)
        latest, scale_of_step = None, None
        with checkpointed_layers(self.unet, store, s.checkpointing):
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
        store.reset()
        return latents, latest

    def _gradient(self, z, t, index: int, it: int, step_scale: StepScale | None):
        """(weighted gradient w.r.t. the latents or None, the step's scale, the logged row).

        ``step_scale`` is None at the first iteration of a step, which measures it."""
        s = self.s
        forward_for_maps(self.unet, self.scheduler.scale_model_input(z, t), t, self.cond)
        maps = self.store.layer_mean()
        terms = loss_terms(
            maps, self.targets, s.adjacent_frames, s.distance, s.temperature, s.spatial_form
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


# -- the loop ---------------------------------------------------------------------------------


def generate(
    backbone,
    parsed: ParsedPrompt,
    plan: Plan,
    settings: ResolvedSettings,
    guided: bool = True,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    record: bool = True,
) -> VideoResult:
    """Generate one video of ``parsed.prompt``; with ``guided`` the StarVid updates run first.

    ``progress`` gets a ``StepProgress`` after every step. Raises ``Cancelled`` when ``cancel``
    is set. ``record=False`` (unguided only) runs the plain loop with no attention recording at
    all, as a cost reference: maps are then empty and in-box shares NaN.
    """
    s = settings
    if guided and not record:
        raise StarVidError("guidance needs the attention maps: record=False is for baselines")
    if plan.frames != s.frames:
        raise StarVidError(f"the plan has {plan.frames} frames but the settings ask {s.frames}")
    run_name = "guided" if guided else "baseline"
    words = build_targets(backbone.tokenizer, parsed, plan, s.spatial_words)
    unet = backbone.unet
    store = AttentionStore(words.positions, select_layers(unet, s.record_layers))

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"{run_name} run cancelled")

    t0 = time.perf_counter()
    recorders = install_recorders(unet, store) if record else contextlib.nullcontext()
    threads = contextlib.nullcontext()
    if backbone.device.type == "cpu":
        threads = torch_threads(choose_threads())
    with RUN_LOCK, threads, PeakMemory(backbone.device) as mem, recorders:
        loop = _Loop(backbone, parsed.prompt, s, store, words, check_cancel)
        if guided and s.iterations > 0:
            loop.guidance = Guidance(
                unet, loop.scheduler, loop.cond, store, words.targets, s, check_cancel
            )
        latents = loop.run(run_name, progress, record)
        frames = decode_latents(backbone, latents)
    elapsed = time.perf_counter() - t0
    warnings = list(words.warnings)
    losses, guide_warnings = [], []
    if loop.guidance is not None:
        losses, guide_warnings = loop.guidance.losses, loop.guidance.warnings
    return VideoResult(
        frames=frames,
        maps=loop.maps_all(),
        maps_window=loop.maps_window(),
        losses=losses,
        inbox_share=loop.share_window(len(plan.objects)),
        inbox_share_final=loop.share_final(len(plan.objects)),
        timing_s=elapsed,
        peak_memory_mb=mem.peak_mb,
        working_memory_mb=mem.working_mb,
        warnings=list(dict.fromkeys(warnings + guide_warnings)),
        guided=guided,
        object_ids=[obj.id for obj in plan.objects],
    )


class _Loop:
    """The denoising loop of one run and the maps it keeps (window, final steps, mean)."""

    def __init__(self, backbone, prompt: str, s: ResolvedSettings, store, words: RunTargets, cc):
        self.bb, self.s, self.store, self.words, self.check_cancel = backbone, s, store, words, cc
        self.embeds = encode_prompt(backbone, prompt)
        self.cond = self.embeds[1:]
        self.scheduler = backbone.new_scheduler()
        self.scheduler.set_timesteps(s.steps, device=backbone.device)
        self.guidance: Guidance | None = None
        self.window_end = min(s.guidance_steps, s.steps) - 1 if s.guidance_steps else 0
        self.n_final = max(1, math.ceil(s.final_fraction * s.steps))
        self.sum = self.final = self.window = None

    def run(self, run_name: str, progress: ProgressFn | None, record: bool) -> torch.Tensor:
        s, unet, store = self.s, self.bb.unet, self.store
        do_cfg = s.cfg_scale > 1.0
        latents = prepare_latents(self.bb, s, self.scheduler)
        for i, t in enumerate(self.scheduler.timesteps):
            latest = None
            if self.guidance is not None and i < s.guidance_steps:
                latents, latest = self.guidance.step(latents, t, i)
            self.check_cancel()
            store.keep_grad, store.stop_early, store.skip_uncond = False, False, do_cfg
            with torch.no_grad():
                inp = torch.cat([latents] * 2) if do_cfg else latents
                inp = self.scheduler.scale_model_input(inp, t)
                cond = self.embeds if do_cfg else self.cond
                noise = unet(inp, t, encoder_hidden_states=cond).sample
                if do_cfg:
                    uncond, text = noise.chunk(2)
                    noise = uncond + s.cfg_scale * (text - uncond)
                latents = _step_scheduler(self.scheduler, noise, t, latents)
            if not bool(torch.isfinite(latents).all()):
                raise StarVidError(
                    f"the {run_name} run's latents became NaN/Inf at step {i + 1} of {s.steps} "
                    "(the model's output was not finite): try another seed, float32, or a "
                    "smaller guidance step"
                )
            maps_np = self._keep_maps(i) if record else {}
            if progress is not None:
                progress(StepProgress(run_name, i + 1, s.steps, latest, maps_np))
        return latents

    def _keep_maps(self, i: int) -> dict[str, np.ndarray]:
        maps = self.store.layer_mean().float()  # (F, T, h, w) of the conditional pass
        self.sum = maps if self.sum is None else self.sum + maps
        if i == self.window_end:
            self.window = maps
        if i >= self.s.steps - self.n_final:
            self.final = maps if self.final is None else self.final + maps
        return _maps_numpy(maps, self.words.labels)

    def maps_all(self) -> dict[str, np.ndarray]:
        if self.sum is None:
            return {}
        return _maps_numpy(self.sum / self.s.steps, self.words.labels)

    def maps_window(self) -> dict[str, np.ndarray]:
        return {} if self.window is None else _maps_numpy(self.window, self.words.labels)

    def share_window(self, objects: int) -> np.ndarray:
        if self.window is None:
            return np.full((objects, self.s.frames), np.nan)
        return inbox_share(self.window, self.words.targets)

    def share_final(self, objects: int) -> np.ndarray:
        if self.final is None:
            return np.full((objects, self.s.frames), np.nan)
        return inbox_share(self.final / self.n_final, self.words.targets)


def iteration_activation_bytes(
    backbone, parsed: ParsedPrompt, plan: Plan, settings: ResolvedSettings
) -> int:
    """Bytes of activations one gradient iteration keeps for its backward pass.

    The bulk of guidance's extra memory. With a backbone on the meta device nothing is computed:
    a full-size model is sized in seconds on any machine.
    """
    s = settings
    words = build_targets(backbone.tokenizer, parsed, plan, s.spatial_words)
    store = AttentionStore(words.positions, select_layers(backbone.unet, s.record_layers))
    scheduler = backbone.new_scheduler()
    scheduler.set_timesteps(s.steps)
    latents = prepare_latents(backbone, s, scheduler)
    cond = encode_prompt(backbone, parsed.prompt)[1:]
    t = scheduler.timesteps[0]
    with RUN_LOCK:  # swaps the shared U-Net's processors, as a run does
        return activation_bytes(backbone.unet, store, latents, t, cond, s.checkpointing)
