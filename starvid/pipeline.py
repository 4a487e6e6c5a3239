"""The StarVid denoising loop: guided (latent updates from attention losses) and baseline.

Reads top to bottom like a diffusers pipeline: encode the prompt (CLIP, unconditional "" first),
prepare seeded latents ``(1, C, F, h, w)``, loop over the scheduler's timesteps, decode each frame
with the VAE. During the first ``guidance_steps`` steps each step starts with ``iterations``
gradient iterations on the latents, using the conditional branch only and stopping the U-Net
forward after the last recorded layer (only the maps are needed there); then the ordinary CFG step
runs without gradients and records the maps of its conditional half for the heat maps and the
in-box shares.

Cancellation: ``cancel`` (a ``threading.Event``) is checked before every U-Net forward; when set,
``generate`` raises ``Cancelled`` (a ``StarVidError``) and nothing partial is returned.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` after a reset; on CPU the kernel's
resident-set high-water mark (``VmHWM``), reset at the start of the run by writing ``5`` to
``/proc/self/clear_refs``; where that is not possible, a thread samples the RSS every 2 ms.
``working_memory_mb`` is the peak minus what was in use when the run started (model weights etc.).
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from starvid import DEFAULT_BACKBONE
from starvid.attention import (
    AttentionStore,
    forward_for_maps,
    install_recorders,
    select_layers,
    token_positions,
)
from starvid.checkpointing import activation_bytes, checkpointed_layers
from starvid.errors import StarVidError
from starvid.guidance import GuidanceTargets, compute_losses, inbox_share, latent_step
from starvid.plan import Plan, load_plan

ProgressFn = Callable[[str, int, int, "dict[str, float] | None", "dict[str, np.ndarray]"], None]


_RUN_LOCK = threading.RLock()


class Cancelled(StarVidError):
    """The run was cancelled through its ``cancel`` event."""


def default_guidance_steps(steps: int) -> int:
    """The default guidance window: the first quarter of the steps (as the paper), at least 1."""
    return max(1, math.ceil(0.25 * steps))


class GenerationSettings(BaseModel):
    """Knobs of one generation. ``None`` means: the backbone's default (see ``resolve``)."""

    model_config = ConfigDict(extra="forbid")

    steps: int | None = Field(None, ge=1, le=1000)
    guidance_steps: int | None = Field(None, ge=0, description="guide the first N steps")
    iterations: int = Field(3, ge=0, le=50, description="gradient iterations per guided step")
    step_size: float | None = Field(None, ge=0.0, le=100.0)
    step_schedule: Literal["sqrt_one_minus_alpha", "constant"] = "sqrt_one_minus_alpha"
    normalize_grad: Literal["rms", "none"] = "rms"
    spatial_weight: float = Field(1.0, ge=0.0)
    syntax_weight: float = Field(0.1, ge=0.0)
    spatial_form: Literal["mass", "topk"] = "mass"
    spatial_words: Literal["noun", "phrase"] = Field(
        "noun",
        description="what the spatial loss pulls into the boxes: the head noun (the paper) or "
        "the noun with its adjectives ('red' in 'two red circles')",
    )
    adjacent_frames: int = Field(1, ge=0, le=64)
    distance: Literal["kl", "cosine"] = "kl"
    temperature: float = Field(0.5, gt=0.0)
    cfg_scale: float | None = Field(None, ge=0.0, le=100.0)
    frames: int | None = Field(None, ge=1, le=512)
    height: int | None = Field(None, ge=8, le=4096)
    width: int | None = Field(None, ge=8, le=4096)
    seed: int = Field(0, ge=0, le=2**63 - 1)
    max_grad_norm: float | None = Field(None, gt=0.0)
    record_layers: str | None = Field(
        None, description="cross-attention layers the losses read: low, mid, all or prefixes"
    )
    checkpointing: bool | None = Field(
        None,
        description="gradient iterations recompute the U-Net's layers in the backward pass "
        "instead of keeping their activations: less memory, about 1.5x the time per iteration",
    )
    final_fraction: float = Field(
        0.2, gt=0.0, le=1.0, description="inbox_share_final: maps of the last fraction of steps"
    )
    stop_early: bool = Field(
        True,
        description="gradient iterations stop the U-Net after the last recorded layer (same "
        "gradient, less work); off runs the whole U-Net, as a reference for cost and quality",
    )

    def resolve(self, backbone) -> GenerationSettings:
        """A copy with every ``None`` filled from the backbone's defaults."""
        d = backbone.defaults
        steps = self.steps or d.steps
        return self.model_copy(
            update=dict(
                steps=steps,
                guidance_steps=(
                    self.guidance_steps
                    if self.guidance_steps is not None
                    else default_guidance_steps(steps)
                ),
                cfg_scale=d.cfg_scale if self.cfg_scale is None else self.cfg_scale,
                step_size=d.step_size if self.step_size is None else self.step_size,
                record_layers=self.record_layers or d.record_layers,
                checkpointing=d.checkpointing if self.checkpointing is None else self.checkpointing,
                frames=self.frames or d.frames,
                height=self.height or d.height,
                width=self.width or d.width,
            )
        )


def make_settings(
    settings: GenerationSettings | dict | None = None, **overrides
) -> GenerationSettings:
    """Validated settings from a model, a dict and/or keyword overrides (``None`` ignored)."""
    data = {}
    if isinstance(settings, GenerationSettings):
        data = settings.model_dump(exclude_unset=True)
    elif settings:
        data = dict(settings)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return GenerationSettings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise StarVidError(f"invalid setting {loc}: {first['msg']}") from exc


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
    settings: GenerationSettings
    object_ids: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    """A guided run (and optionally its same-seed baseline) with the run report."""

    prompt: str
    plan: Plan
    parsed: Any
    settings: GenerationSettings
    guided: VideoResult
    baseline: VideoResult | None
    report: dict


# -- memory -----------------------------------------------------------------------------------


class PeakMemory:
    """Peak memory of a block in MB (see the module docstring for how)."""

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self.peak_mb = 0.0
        self.start_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sampled = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_mb = torch.cuda.memory_allocated(self.device) / 2**20
            return self
        self.start_mb = _rss_mb()
        if not _reset_hwm():
            self._sampled = int(self.start_mb * 1024)
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._sampled = max(self._sampled, int(_rss_mb() * 1024))

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self._sampled / 1024, _rss_mb())
        else:
            self.peak_mb = _status_kb("VmHWM") / 1024

    @property
    def working_mb(self) -> float:
        return max(0.0, self.peak_mb - self.start_mb)


def _status_kb(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return float(line.split()[1])
    raise OSError(key)


def _rss_mb() -> float:
    try:
        return _status_kb("VmRSS") / 1024
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        _status_kb("VmHWM")
        return True
    except OSError:
        return False


# -- building blocks --------------------------------------------------------------------------


@dataclass
class _Words:
    """Token columns of the words the run records, and display labels for the heat maps."""

    positions: list[int]
    labels: dict[str, list[int]]  # label -> columns into positions
    targets: GuidanceTargets


def _unique(label: str, taken: dict) -> str:
    key, n = label, 2
    while key in taken:
        key, n = f"{label}#{n}", n + 1
    return key


def build_targets(
    tokenizer, parsed, plan: Plan, warn: list[str], spatial_words: str = "noun"
) -> _Words:
    """Map the parse's nouns/verbs to token columns and the plan's objects to subjects.

    ``spatial_words="phrase"`` also records each subject's adjectives and has the spatial loss
    pull them into the subject's boxes with its noun.
    """
    subjects = parsed.subjects
    for obj in plan.objects:
        if obj.subject >= len(subjects):
            raise StarVidError(
                f"plan object '{obj.id}' refers to subject {obj.subject} but the prompt has "
                f"{len(subjects)} subject(s)"
            )
        if obj.noun != subjects[obj.subject].noun:
            raise StarVidError(
                f"plan object '{obj.id}' is a '{obj.noun}' but subject {obj.subject} of the "
                f"prompt is '{subjects[obj.subject].noun}'"
            )
    words = []  # (kind, subject, Word)
    for s, sub in enumerate(subjects):
        words.append(("noun", s, sub.head))
        words.extend(("verb", s, v) for v in sub.verbs)
        if spatial_words == "phrase":
            words.extend(("modifier", s, m) for m in sub.modifiers)
    words.extend(("scene", -1, w) for w in getattr(parsed, "scene_words", []) or [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pos = token_positions(tokenizer, parsed.prompt, [(w.start, w.end) for _, _, w in words])
    warn.extend(str(c.message) for c in caught)
    positions = sorted({p for ps in pos for p in ps})
    col = {p: i for i, p in enumerate(positions)}
    noun_cols: list[list[int]] = [[] for _ in subjects]
    modifier_cols: list[list[int]] = [[] for _ in subjects]
    verb_cols: list[tuple[int, list[int]]] = []
    scene_cols: list[list[int]] = []
    labels: dict[str, list[int]] = {}
    for (kind, s, w), ps in zip(words, pos, strict=True):
        cols = [col[p] for p in ps]
        if kind == "noun":
            noun_cols[s] = cols
        elif kind == "verb":
            verb_cols.append((s, cols))
        elif kind == "modifier":
            modifier_cols[s] += cols
        else:
            scene_cols.append(cols)
        if kind != "scene":
            labels[_unique(w.text, labels)] = cols
    targets = GuidanceTargets(
        noun_cols=noun_cols,
        verb_cols=verb_cols,
        object_subject=[obj.subject for obj in plan.objects],
        boxes=plan.boxes_array(),
        extra_negative_cols=scene_cols,
        spatial_cols=(
            [n + m for n, m in zip(noun_cols, modifier_cols, strict=True)]
            if spatial_words == "phrase"
            else None
        ),
    )
    return _Words(positions, labels, targets)


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


def prepare_latents(backbone, settings: GenerationSettings, scheduler) -> torch.Tensor:
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


def _check_size(backbone, s: GenerationSettings) -> None:
    f = backbone.vae_scale_factor * 2 ** (len(backbone.unet.config.block_out_channels) - 1)
    for name, v in (("height", s.height), ("width", s.width)):
        if v % f:
            raise StarVidError(f"{name}={v} must be a multiple of {f} for this backbone")


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


# -- the loop ---------------------------------------------------------------------------------


def generate(
    backbone,
    prompt: str,
    plan: Plan,
    parsed=None,
    settings: GenerationSettings | dict | None = None,
    guided: bool = True,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    run_name: str | None = None,
    record: bool = True,
) -> VideoResult:
    """Generate one video; with ``guided`` the StarVid latent updates run in the first steps.

    ``progress(run_name, step, total, losses, maps)`` is called after every step (``step`` counts
    finished steps, 1..total; ``losses`` the latest iteration's terms or None; ``maps`` word ->
    ``(F, h, w)`` numpy of that step's conditional pass). Raises ``Cancelled`` when ``cancel``
    is set. ``record=False`` (unguided only) runs the plain loop with no attention recording at
    all, as a cost reference: maps are then empty and in-box shares NaN.
    """
    if guided and not record:
        raise StarVidError("guidance needs the attention maps: record=False is for baselines")
    if parsed is None:
        from starvid.parsing import parse_prompt

        parsed = parse_prompt(prompt)
    s = make_settings(settings).resolve(backbone)
    _check_size(backbone, s)
    run_name = run_name or ("guided" if guided else "baseline")
    warn: list[str] = []
    if plan.frames != s.frames:
        plan = plan.resample(s.frames)
    words = build_targets(backbone.tokenizer, parsed, plan, warn, s.spatial_words)
    targets = words.targets
    for s_idx, cols in enumerate(targets.noun_cols):
        if not cols and s_idx in targets.object_subject:
            warn.append(f"subject {s_idx} has no token within CLIP's limit; it is not guided")
    unet = backbone.unet
    store = AttentionStore(words.positions, select_layers(unet, s.record_layers))
    do_cfg = s.cfg_scale > 1.0
    window_end = min(s.guidance_steps, s.steps) - 1 if s.guidance_steps else 0
    n_final = max(1, math.ceil(s.final_fraction * s.steps))
    losses: list[dict[str, float]] = []
    device = backbone.device

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"{run_name} run cancelled")

    t0 = time.perf_counter()
    recorders = install_recorders(unet, store) if record else contextlib.nullcontext()
    # Backbones are shared and recording swaps the U-Net's processors: one run at a time.
    with _RUN_LOCK, PeakMemory(device) as mem, recorders:
        embeds = encode_prompt(backbone, prompt)
        cond = embeds[1:]
        scheduler = backbone.new_scheduler()
        scheduler.set_timesteps(s.steps, device=device)
        latents = prepare_latents(backbone, s, scheduler)
        maps_sum = None
        final_sum = None
        maps_window = share_window = None
        for i, t in enumerate(scheduler.timesteps):
            latest = None
            if guided and i < s.guidance_steps and s.iterations > 0:
                latents, latest = _guide(
                    unet,
                    scheduler,
                    latents,
                    t,
                    cond,
                    store,
                    targets,
                    s,
                    i,
                    losses,
                    warn,
                    check_cancel,
                )
            check_cancel()
            store.keep_grad, store.stop_early, store.skip_uncond = False, False, do_cfg
            with torch.no_grad():
                inp = torch.cat([latents] * 2) if do_cfg else latents
                inp = scheduler.scale_model_input(inp, t)
                noise = unet(inp, t, encoder_hidden_states=embeds if do_cfg else cond).sample
                if do_cfg:
                    uncond, text = noise.chunk(2)
                    noise = uncond + s.cfg_scale * (text - uncond)
                latents = _step_scheduler(scheduler, noise, t, latents)
            if not record:
                if progress is not None:
                    progress(run_name, i + 1, s.steps, None, {})
                continue
            maps = store.layer_mean().float()  # (F, T, h, w) of the conditional pass
            maps_sum = maps if maps_sum is None else maps_sum + maps
            if i == window_end:
                maps_window = maps
                share_window = inbox_share(maps, targets)
            if i >= s.steps - n_final:
                final_sum = maps if final_sum is None else final_sum + maps
            if progress is not None:
                progress(run_name, i + 1, s.steps, latest, _maps_numpy(maps, words.labels))
        frames = decode_latents(backbone, latents)
    elapsed = time.perf_counter() - t0
    if record:
        share_final = inbox_share(final_sum / n_final, targets)
        maps_all = _maps_numpy(maps_sum / s.steps, words.labels)
        maps_window = _maps_numpy(maps_window, words.labels)
    else:
        share_window = share_final = np.full((len(plan.objects), s.frames), np.nan)
        maps_all, maps_window = {}, {}
    return VideoResult(
        frames=frames,
        maps=maps_all,
        maps_window=maps_window,
        losses=losses,
        inbox_share=share_window,
        inbox_share_final=share_final,
        timing_s=elapsed,
        peak_memory_mb=mem.peak_mb,
        working_memory_mb=mem.working_mb,
        warnings=list(dict.fromkeys(warn)),
        guided=guided,
        settings=s,
        object_ids=[obj.id for obj in plan.objects],
    )


def _guide(unet, scheduler, latents, t, cond, store, targets, s, step, losses, warn, check_cancel):
    """``s.iterations`` gradient updates of the latents at one step (conditional branch only)."""
    store.keep_grad, store.stop_early, store.skip_uncond = True, s.stop_early, False
    with checkpointed_layers(unet, store, s.checkpointing):
        latents, latest = _iterate(
            unet, scheduler, latents, t, cond, store, targets, s, step, losses, warn, check_cancel
        )
    store.reset()
    return latents, latest


def _iterate(
    unet, scheduler, latents, t, cond, store, targets, s, step, losses, warn, check_cancel
):
    """The gradient iterations of one guided step: updated latents and the last loss terms."""
    scale = _noise_scale(scheduler, t, s.step_schedule)
    latest = None
    for it in range(s.iterations):
        check_cancel()
        z = latents.detach().requires_grad_(True)
        with torch.enable_grad():
            forward_for_maps(unet, scheduler.scale_model_input(z, t), t, cond)
            lv = compute_losses(
                store.layer_mean(),
                targets,
                s.spatial_weight,
                s.syntax_weight,
                s.adjacent_frames,
                s.distance,
                s.temperature,
                s.spatial_form,
            )
            latest = {"step": step, "iteration": it, **lv.as_dict()}
            losses.append(latest)
            if not torch.isfinite(lv.total):
                warn.append(f"step {step}: non-finite loss (NaN/Inf); latent update skipped")
                break
            if not lv.total.requires_grad:
                break  # nothing to steer (no objects with tokens, zero weights)
            (grad,) = torch.autograd.grad(lv.total, z)
        update, problem = latent_step(grad, s.step_size, s.normalize_grad, s.max_grad_norm, scale)
        if update is None:
            warn.append(f"step {step}: {problem}")
            break
        latents = (latents - update).detach()
    return latents, latest


def iteration_activation_bytes(
    backbone, prompt: str, settings: GenerationSettings | dict | None = None
) -> int:
    """Bytes of activations one gradient iteration keeps for its backward pass (heuristic plan).

    The bulk of guidance's extra memory. With a backbone on the meta device nothing is computed:
    a full-size model is sized in seconds on any machine.
    """
    from starvid.parsing import parse_prompt
    from starvid.planning import heuristic_plan

    s = make_settings(settings).resolve(backbone)
    parsed = parse_prompt(prompt)
    plan = heuristic_plan(parsed, frames=s.frames, seed=s.seed)
    words = build_targets(backbone.tokenizer, parsed, plan, [], s.spatial_words)
    store = AttentionStore(words.positions, select_layers(backbone.unet, s.record_layers))
    scheduler = backbone.new_scheduler()
    scheduler.set_timesteps(s.steps)
    latents = prepare_latents(backbone, s, scheduler)
    cond = encode_prompt(backbone, prompt)[1:]
    t = scheduler.timesteps[0]
    with _RUN_LOCK:  # swaps the shared U-Net's processors, as a run does
        return activation_bytes(backbone.unet, store, latents, t, cond, s.checkpointing)


# -- a whole run ------------------------------------------------------------------------------


def _load_backbone(backbone):
    if isinstance(backbone, str):
        from starvid.backbones import load_backbone

        return load_backbone(backbone)
    return backbone


def _as_plan(plan) -> Plan:
    if isinstance(plan, Plan):
        return plan
    if isinstance(plan, (str, bytes, dict)):
        return load_plan(plan)
    raise StarVidError(f"plan must be a Plan, a dict or JSON text, not {type(plan).__name__}")


def _share_lists(a: np.ndarray) -> list[list[float]]:
    return [[round(float(v), 4) for v in row] for row in a]


def vocabulary_warnings(prompt: str, backbone) -> list[str]:
    """A warning naming the prompt's words a closed-vocabulary backbone never saw in training."""
    vocab = getattr(backbone, "vocabulary", None)
    if not vocab:
        return []
    words = re.findall(r"[a-z]+", prompt.lower())
    unknown = list(dict.fromkeys(w for w in words if w not in vocab))
    if not unknown:
        return []
    return [
        f"the {backbone.name} backbone knows only the words of its world ("
        + ", ".join(sorted(vocab))
        + "); new to it: "
        + ", ".join(unknown)
    ]


def run_generation(
    prompt: str,
    plan: Plan | dict | str | None = None,
    backbone=DEFAULT_BACKBONE,
    settings: GenerationSettings | dict | None = None,
    baseline: bool = False,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    parsed=None,
) -> RunResult:
    """Parse, plan (heuristic when no plan is given), generate guided (+ same-seed baseline).

    Returns the videos and the run report (the contract of the design notes, section 2).
    """
    from starvid.parsing import parse_prompt

    if parsed is None:
        parsed = parse_prompt(prompt)
    bb = _load_backbone(backbone)
    s = make_settings(settings)
    if plan is not None:
        plan = _as_plan(plan)
        if s.frames is None:
            s = s.model_copy(update={"frames": plan.frames})
    s = s.resolve(bb)
    run_warnings: list[str] = []
    if plan is None:
        from starvid.planning import heuristic_plan

        plan = heuristic_plan(parsed, frames=s.frames, seed=s.seed)
    elif plan.frames != s.frames:
        run_warnings.append(f"plan has {plan.frames} frames; resampled to {s.frames}")
        plan = plan.resample(s.frames)
    run_warnings += vocabulary_warnings(prompt, bb)
    guided = generate(bb, prompt, plan, parsed, s, guided=True, progress=progress, cancel=cancel)
    base = None
    if baseline:
        base = generate(bb, prompt, plan, parsed, s, guided=False, progress=progress, cancel=cancel)
    report = build_report(prompt, bb, plan, s, guided, base, run_warnings)
    return RunResult(prompt, plan, parsed, s, guided, base, report)


def build_report(
    prompt,
    backbone,
    plan: Plan,
    s: GenerationSettings,
    guided: VideoResult,
    base: VideoResult | None,
    extra_warnings: list[str] | None = None,
) -> dict:
    """The run report dict (design notes section 2), plain JSON types only."""
    objects = []
    for k, obj in enumerate(plan.objects):
        share = {"guided": _share_lists(guided.inbox_share)[k]}
        final = {"guided": _share_lists(guided.inbox_share_final)[k]}
        if base is not None:
            share["baseline"] = _share_lists(base.inbox_share)[k]
            final["baseline"] = _share_lists(base.inbox_share_final)[k]
        objects.append(
            {"id": obj.id, "noun": obj.noun, "inbox_share": share, "inbox_share_final": final}
        )
    runs = {"guided": guided} | ({"baseline": base} if base is not None else {})
    warn = list(extra_warnings or [])
    for name, r in runs.items():
        warn.extend(f"{name}: {w}" for w in r.warnings)
    return {
        "prompt": prompt,
        "backbone": getattr(backbone, "name", str(backbone)),
        "seed": s.seed,
        "settings": s.model_dump(),
        "plan": plan.to_dict(),
        "losses": [
            {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}
            for row in guided.losses
        ],
        "objects": objects,
        "timing_s": {k: round(r.timing_s, 3) for k, r in runs.items()},
        "peak_memory_mb": {k: round(r.peak_memory_mb, 1) for k, r in runs.items()},
        "working_memory_mb": {k: round(r.working_memory_mb, 1) for k, r in runs.items()},
        "frames": int(guided.frames.shape[0]),
        "fps": int(getattr(getattr(backbone, "defaults", None), "fps", 8)),
        "warnings": warn,
    }
