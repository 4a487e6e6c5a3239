"""The StarVid call shared by the text-to-video and AnimateDiff pipelines.

``StarVidMixin.__call__`` reads top to bottom like a diffusers pipeline: check the inputs, build
the targets from the plan, encode the prompt, set the timesteps, draw the latents, install the
recorders, run the loop (the guided updates first in the guidance window, then the ordinary CFG
step, recording the maps of its conditional half), decode. The two pipelines differ only in the
diffusers parent they build on (its ``encode_prompt``, ``prepare_latents``, ``decode_latents``)
and in how their scheduler steps video latents (``_scheduler_step``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import numpy as np
import torch

from starvid.attention import (
    CFG_PASS,
    ForwardMode,
    RecordSpec,
    forward_for_maps,
    install_recorders,
    select_layers,
)
from starvid.errors import StarVidError
from starvid.memory import PeakMemory
from starvid.parsing import ParsedPrompt
from starvid.pipelines.defaults import BackboneDefaults, guess_defaults
from starvid.pipelines.guided import GuidedUpdates
from starvid.pipelines.maps import RunMaps, maps_numpy
from starvid.pipelines.output import Cancelled, ProgressFn, StarVidPipelineOutput, StepProgress
from starvid.plan import Plan
from starvid.recording import AttentionRecording
from starvid.settings import GenerationSettings, ResolvedSettings
from starvid.targets import build_targets
from starvid.threads import choose_threads, torch_threads

# A pipeline is shared (the Studio's users, a batch) and recording swaps the U-Net's
# processors: one run at a time.
RUN_LOCK = threading.RLock()
# Frames the VAE decodes at once: bounds the decoder's memory at full size.
DECODE_CHUNK = 8


class StarVidMixin:
    """StarVid's ``__call__`` and its model facts, on top of a diffusers video pipeline.

    The pipeline's config may carry ``starvid_defaults`` (the generation defaults the model was
    trained for) and ``vocabulary`` (the words of a closed-vocabulary model, such as the shapes
    model); ``from_pretrained`` reads both from the folder's ``model_index.json``.
    """

    name: str = ""  # the name it was loaded by (registry name, folder or hub id)
    source: str = ""
    random_weights: bool = False

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """diffusers' ``from_pretrained``; weights from safetensors only, and float32 unless
        ``torch_dtype`` says otherwise (transformers would keep a checkpoint's fp16, which a
        CPU runs slowly and a float32 U-Net cannot take)."""
        kwargs.setdefault("use_safetensors", True)
        if "torch_dtype" not in kwargs:  # diffusers 0.42 names it dtype
            kwargs.setdefault("dtype", torch.float32)
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    def _register_starvid(self, starvid_defaults, vocabulary) -> None:
        self.register_to_config(
            starvid_defaults=dict(starvid_defaults) if starvid_defaults else None,
            vocabulary=sorted(vocabulary) if vocabulary else None,
        )

    @property
    def defaults(self) -> BackboneDefaults:
        """The generation defaults in the config, else those of a registry model of the same
        source, else guessed from the U-Net (its size, 16 frames)."""
        data = getattr(self.config, "starvid_defaults", None)
        if data:
            return BackboneDefaults.from_dict(data)
        from starvid.backbones import registry_defaults  # the registry knows the hub models

        known = registry_defaults(str(getattr(self.config, "_name_or_path", "")))
        return known or guess_defaults(self.unet, self.vae_scale_factor)

    @property
    def vocabulary(self) -> frozenset[str] | None:
        """The words a closed-vocabulary model was trained on; None for open vocabularies."""
        words = getattr(self.config, "vocabulary", None)
        return frozenset(words) if words else None

    def new_scheduler(self):
        """A fresh scheduler of this pipeline's scheduler class and config."""
        return type(self.scheduler).from_config(self.scheduler.config)

    def info(self) -> dict:
        """Plain-JSON description for run reports: source, dtype, parameter counts."""

        def count(m: torch.nn.Module) -> int:
            return sum(p.numel() for p in m.parameters())

        return {
            "name": self.name,
            "source": self.source,
            "pipeline": type(self).__name__,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "random_weights": self.random_weights,
            "params": {
                "unet": count(self.unet),
                "vae": count(self.vae),
                "text_encoder": count(self.text_encoder),
            },
            "vae_scale_factor": self.vae_scale_factor,
        }

    # -- the call -------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | ParsedPrompt,
        plan: Plan | None = None,
        settings: GenerationSettings | None = None,
        *,
        guided: bool = True,
        record: bool = True,
        callback: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        **overrides,
    ) -> StarVidPipelineOutput:
        """Generate one video of ``prompt``; with ``guided`` the StarVid updates steer it.

        Args:
            prompt: the text, or its ``ParsedPrompt`` (parsed once at the edge).
            plan: the boxes per object and frame; None makes the heuristic planner's plan.
            settings: generation settings; None fields take this model's defaults.
            guided: run StarVid's updates (False: the same-seed baseline).
            record: record the attention maps; False (baselines only) runs the plain loop as
                a cost reference, with no maps and NaN in-box shares.
            callback: gets a ``StepProgress`` after every denoising step.
            cancel: when set, the run stops at its next U-Net forward and raises ``Cancelled``.
            **overrides: settings by name (``num_frames=16``, ``seed=3``, ``step_size=0.1``).

        Returns:
            ``StarVidPipelineOutput``: frames, heat maps, loss rows, in-box shares, cost.
        """
        # 1. check inputs: the parse, the settings against this model, the plan at their frames
        parsed, plan, s = self._check_inputs(prompt, plan, settings, overrides)
        if guided and not record:
            raise StarVidError("guidance needs the attention maps: record=False is for baselines")
        run_name = "guided" if guided else "baseline"
        device = self._execution_device

        def check_cancel() -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"{run_name} run cancelled")

        threads = torch_threads(choose_threads()) if device.type == "cpu" else None
        t0 = time.perf_counter()
        with RUN_LOCK, threads or contextlib.nullcontext(), PeakMemory(device) as mem:
            # 2. targets from the plan: each word's token columns, each object's boxes
            words = build_targets(self.tokenizer, parsed, plan, s.spatial_words, s.syntax_words)
            # 3. encode the prompt: unconditional ("") first, as the CFG batch wants it
            cond, uncond = self.encode_prompt(parsed.prompt, device, 1, True, "")
            cond = self.embeds_per_frame(cond, s.frames)
            embeds = torch.cat([self.embeds_per_frame(uncond, s.frames), cond])
            # 4. timesteps
            self.scheduler.set_timesteps(s.steps, device=device)
            # 5. latents: drawn on the CPU, so a seed gives the same noise on every device
            latents = self.seeded_latents(s, device)
            # 6. recorders: the maps of the layers the losses read, for the words of the plan
            spec = RecordSpec(
                tuple(words.positions), tuple(select_layers(self.unet, s.record_layers))
            )
            store = spec.store()
            recording = self._debug_recording(parsed.prompt, spec, s, guided) if record else None
            store.observer = recording
            updates = None
            if guided and s.iterations > 0:

                def forward(z, t):
                    z = self.scheduler.scale_model_input(z, t)
                    forward_for_maps(self.unet, z, t, cond)

                updates = GuidedUpdates(
                    self.unet, self.scheduler, forward, store, words.targets, s, check_cancel
                )
            kept = RunMaps(s.steps, s.guidance_steps, s.final_fraction, s.frames)
            do_cfg = s.cfg_scale > 1.0
            taps = recording.layer_names if recording is not None else ()
            recorders = install_recorders(self.unet, store, taps) if record else None
            with recorders or contextlib.nullcontext():
                # 7. the loop: guided updates in the window, then the ordinary (CFG) step
                for i, t in enumerate(self.scheduler.timesteps):
                    latest = None
                    if updates is not None and i < s.guidance_steps:
                        latents, latest = updates.step(latents, t, i)
                    check_cancel()
                    with store.mode(CFG_PASS if do_cfg else ForwardMode()):
                        noise = self._predict_noise(
                            latents, t, embeds if do_cfg else cond, s, do_cfg
                        )
                    latents = self._scheduler_step(noise, t, latents)
                    _check_finite(latents, run_name, i, s.steps)
                    step_maps = {}
                    if record:
                        step = store.layer_mean()  # (F, tokens, h, w) of the conditional pass
                        kept.keep(i, step)
                        step_maps = maps_numpy(step, words.labels)
                    if callback is not None:
                        callback(StepProgress(run_name, i + 1, s.steps, latest, step_maps))
            # 8. decode
            frames = self.decode_frames(latents)
        self.maybe_free_model_hooks()
        n = len(plan.objects)
        return StarVidPipelineOutput(
            frames=frames,
            maps=kept.mean(words.labels),
            maps_window=kept.at_window_end(words.labels),
            losses=updates.losses if updates else [],
            inbox_share=kept.share_window(words.targets, n),
            inbox_share_final=kept.share_final(words.targets, n),
            timing_s=time.perf_counter() - t0,
            peak_memory_mb=mem.peak_mb,
            working_memory_mb=mem.working_mb,
            warnings=list(dict.fromkeys(words.warnings + (updates.warnings if updates else []))),
            guided=guided,
            object_ids=[obj.id for obj in plan.objects],
            labels=words.label_subjects,
            attention=recording,
        )

    # -- the steps ------------------------------------------------------------------------------

    def _check_inputs(self, prompt, plan, settings, overrides):
        """(parse, plan with the settings' frames, resolved settings)."""
        from starvid.parsing import parse_prompt

        parsed = prompt if isinstance(prompt, ParsedPrompt) else parse_prompt(prompt)
        s = resolve_settings(self, settings, overrides)
        if plan is None:
            from starvid.planning.heuristic import heuristic_plan

            plan = heuristic_plan(parsed, frames=s.frames, seed=s.seed)
        if plan.frames != s.frames:
            raise StarVidError(f"the plan has {plan.frames} frames but the settings ask {s.frames}")
        return parsed, plan, s

    def _debug_recording(self, prompt: str, spec: RecordSpec, s: ResolvedSettings, guided: bool):
        """The attention debugger's recording when the settings ask for it (else None)."""
        if s.record_attention == "needed":
            return None
        return AttentionRecording.for_prompt(
            self.unet,
            self.tokenizer,
            prompt,
            spec.layers,
            window=min(s.guidance_steps, s.steps) if guided and s.iterations > 0 else 0,
            heads=s.record_attention == "full_heads",
        )

    def seeded_latents(self, s: ResolvedSettings, device: torch.device) -> torch.Tensor:
        """Noise ``(1, C, F, h, w)`` for ``s.seed``, drawn in float32 on the CPU, scaled."""
        generator = torch.Generator("cpu").manual_seed(s.seed)
        c = self.unet.config.in_channels
        cpu = torch.device("cpu")
        latents = self.prepare_latents(
            1, c, s.frames, s.height, s.width, torch.float32, cpu, generator
        )
        return latents.to(device, self.unet.dtype)

    def embeds_per_frame(self, embeds: torch.Tensor, frames: int) -> torch.Tensor:
        """Text embeddings as the U-Net takes them (UNet3D: one row per video)."""
        return embeds

    def _predict_noise(self, latents, t, embeds, s: ResolvedSettings, do_cfg: bool):
        """The U-Net's noise prediction, classifier-free guided with ``do_cfg`` (``embeds``
        then holds the unconditional rows first)."""
        inp = torch.cat([latents] * 2) if do_cfg else latents
        inp = self.scheduler.scale_model_input(inp, t)
        noise = self.unet(inp, t, encoder_hidden_states=embeds, return_dict=False)[0]
        if do_cfg:
            uncond, text = noise.chunk(2)
            noise = uncond + s.cfg_scale * (text - uncond)
        return noise

    def _scheduler_step(self, noise, t, latents) -> torch.Tensor:
        return self.scheduler.step(noise, t, latents).prev_sample

    def decode_frames(self, latents: torch.Tensor) -> np.ndarray:
        """Latents ``(1, C, F, h, w)`` -> uint8 frames ``(F, H, W, 3)``, a few frames at a time
        through the parent pipeline's ``decode_latents``."""
        out = []
        for i in range(0, latents.shape[2], DECODE_CHUNK):
            video = self.decode_latents(latents[:, :, i : i + DECODE_CHUNK])  # (1, 3, f, H, W)
            video = ((video / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
            out.append(video[0].permute(1, 2, 3, 0).cpu().numpy())
        return np.concatenate(out)


def resolve_settings(pipe, settings: GenerationSettings | None, overrides: dict):
    """Settings with ``overrides`` (diffusers' names too) applied, resolved against ``pipe``."""
    from starvid.settings import make_settings

    aliases = {
        "num_frames": "frames",
        "num_inference_steps": "steps",
        "guidance_scale": "cfg_scale",
    }
    if not overrides:
        return (settings or GenerationSettings()).resolve(pipe)
    data = settings.model_dump(exclude_unset=True) if settings is not None else {}
    data.update({aliases.get(k, k): v for k, v in overrides.items() if v is not None})
    return make_settings(data).resolve(pipe)


@contextlib.contextmanager
def quiet_logger(name: str):
    """Only errors from the logger ``name`` inside the block."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


def _check_finite(latents: torch.Tensor, run_name: str, i: int, steps: int) -> None:
    if not bool(torch.isfinite(latents).all()):
        raise StarVidError(
            f"the {run_name} run's latents became NaN/Inf at step {i + 1} of {steps} "
            "(the model's output was not finite): try another seed, float32, or a "
            "smaller guidance step"
        )
