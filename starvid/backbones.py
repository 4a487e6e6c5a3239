"""Text-to-video backbones: registry, loading and the shipped `tiny` model.

A backbone is a diffusers U-Net text-to-video model in the usual folder layout (unet/, vae/,
text_encoder/, tokenizer/, scheduler/), loaded with diffusers' and transformers' own classes from
safetensors only. Registry names: `shapes` (shipped in assets/shapes, trained by the project on
its shapes world, the offline default), `tiny` (assets/tiny, random toy weights, CPU tests),
`zeroscope` and `modelscope` (hub ids). Any local folder or hub id in that layout also works.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    MotionAdapter,
    UNet2DConditionModel,
    UNet3DConditionModel,
    UNetMotionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from starvid import DEFAULT_BACKBONE
from starvid.assets import ASSETS_DIR
from starvid.errors import StarVidError
from starvid.folders import (
    SCHEDULERS,
    check_folder,
    folder_config,
    load_components,
    make_scheduler,
    read_json,
    vae_class,
)
from starvid.hub import WEIGHT_PARTS, fetch_adapter, fetch_hub, hub_cached
from starvid.pipelines import (
    BackboneDefaults,
    StarVidAnimateDiffPipeline,
    StarVidMixin,
    StarVidPipeline,
)
from starvid.pipelines.text_to_video import MAX_FRAME_POSITIONS

TINY_DIR = ASSETS_DIR / "tiny"
CONFIGS_DIR = ASSETS_DIR / "configs"

# What load_backbone returns: a StarVid diffusers pipeline (text-to-video U-Net or AnimateDiff).
Backbone = StarVidMixin


@dataclass(frozen=True)
class BackboneSpec:
    """Registry entry: where the weights live and how to run them by default."""

    source: str  # hub id ("owner/name[@revision]"), or a project folder starting "assets/"
    defaults: BackboneDefaults
    description: str
    scheduler: str = "dpmsolver++"  # "dpmsolver++", "ddim" or "folder" (the folder's own class)
    needs_gpu: bool = False  # runs in minutes on a CPU only when False
    # Weights a first run downloads, in GB (fp16, what a GPU loads); 0 for shipped models.
    download_gb: float = 0.0
    # AnimateDiff: the motion adapter's hub id, loaded with the SD 1.5 checkpoint in `source`.
    adapter: str = ""
    # Scheduler config entries that replace the folder's (AnimateDiff's linear betas).
    scheduler_config: dict = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return self.source.startswith("assets/")

    def local_path(self) -> Path:
        return ASSETS_DIR / self.source.removeprefix("assets/")


# The shapes model's one 8x8 down layer: its maps tell neighbouring objects apart (the 4x4 ones
# cannot), gradient iterations stop right after it, and it scored best on the tuning captions
# (docs/results.md).
SHAPES_RECORD_LAYERS = "down_blocks.0"
# ZeroScope and ModelScope share one architecture: 1,835 M parameters (U-Net 1,411 M, text
# encoder 340 M, VAE 84 M; counted on the meta device from assets/configs), 3.7 GB in fp16.
FULL_SIZE_FP16_GB = 3.7
# AnimateDiff: SD 1.5 (U-Net 860 M, text encoder 123 M, VAE 84 M) and the v1-5-2 motion adapter
# (453 M), counted on the meta device from assets/configs/animatediff: 3.0 GB in fp16.
ANIMATEDIFF_FP16_GB = 3.0
# A guided AnimateDiff step at 512x512x16 fits a 24 GB card only when the gradient iterations
# recompute layers instead of keeping their activations (tests/test_animatediff.py; figures in
# docs/results.md).
ANIMATEDIFF_CHECKPOINTING = True

BACKBONES: dict[str, BackboneSpec] = {
    "shapes": BackboneSpec(
        source="assets/shapes",
        defaults=BackboneDefaults(
            height=32,
            width=32,
            frames=8,
            steps=20,
            cfg_scale=4.0,
            fps=8,
            step_size=0.05,
            record_layers=SHAPES_RECORD_LAYERS,
        ),
        description=(
            "Shipped shapes-world model, trained by the project (32x32, 8 frames, coloured "
            "circles, squares and triangles moving left/right/up/down, jumping or still); "
            "runs on a CPU in seconds. Prompts: its world's words, e.g. "
            "'two red circles moving left and a blue square jumping'."
        ),
        scheduler="folder",
    ),
    "tiny": BackboneSpec(
        source="assets/tiny",
        defaults=BackboneDefaults(height=64, width=64, frames=8, steps=10, cfg_scale=7.5, fps=8),
        description=(
            "Shipped toy model (same classes as ZeroScope, random weights, 16x16 latents): "
            "for tests and CPU demos of the pipeline, not for pretty videos."
        ),
    ),
    "zeroscope": BackboneSpec(
        source="cerspense/zeroscope_v2_576w",
        # At 576x320x24 a gradient iteration's activations outgrow a 24 GB card unless layers
        # are recomputed (benchmarks/guidance_cost.py --estimate; docs/results.md).
        defaults=BackboneDefaults(
            height=320, width=576, frames=24, steps=40, cfg_scale=9.0, fps=8, checkpointing=True
        ),
        description="ZeroScope v2 576w (ModelScope fine-tune, 576x320, 24 frames); GPU advised.",
        needs_gpu=True,
        download_gb=FULL_SIZE_FP16_GB,
    ),
    "modelscope": BackboneSpec(
        source="ali-vilab/text-to-video-ms-1.7b",
        defaults=BackboneDefaults(height=256, width=256, frames=16, steps=50, cfg_scale=9.0, fps=8),
        description="ModelScope text-to-video 1.7B (256x256, 16 frames); GPU advised.",
        needs_gpu=True,
        download_gb=FULL_SIZE_FP16_GB,
    ),
    "animatediff": BackboneSpec(
        source="stable-diffusion-v1-5/stable-diffusion-v1-5",
        adapter="guoyww/animatediff-motion-adapter-v1-5-2",
        defaults=BackboneDefaults(
            height=512,
            width=512,
            frames=16,
            steps=25,
            cfg_scale=7.5,
            fps=8,
            checkpointing=ANIMATEDIFF_CHECKPOINTING,
        ),
        description=(
            "AnimateDiff (Stable Diffusion 1.5 with the v1-5-2 motion adapter, 512x512, 16 "
            "frames); GPU advised."
        ),
        scheduler="ddim",
        # the motion adapter was trained on linear betas (diffusers' AnimateDiff examples)
        scheduler_config={
            "beta_schedule": "linear",
            "clip_sample": False,
            "timestep_spacing": "linspace",
            "steps_offset": 1,
        },
        needs_gpu=True,
        download_gb=ANIMATEDIFF_FP16_GB,
    ),
}


def unknown_words(prompt: str, backbone: Backbone) -> list[str]:
    """The prompt's words a closed-vocabulary backbone never saw in training, in prompt order."""
    if not backbone.vocabulary:
        return []
    words = re.findall(r"[a-z]+", prompt.lower())
    return list(dict.fromkeys(w for w in words if w not in backbone.vocabulary))


def vocabulary_warnings(prompt: str, backbone: Backbone) -> list[str]:
    """A warning naming the prompt's words a closed-vocabulary backbone never saw in training."""
    unknown = unknown_words(prompt, backbone)
    if not unknown:
        return []
    return [
        f"the {backbone.name} backbone knows only the words of its world ("
        + ", ".join(sorted(backbone.vocabulary))
        + "); new to it: "
        + ", ".join(unknown)
    ]


def list_backbones() -> list[str]:
    """Names in the registry."""
    return list(BACKBONES)


def describe_backbones() -> list[dict]:
    """Registry as plain data (for the CLI and UI): source, defaults, whether weights are here,
    whether a GPU is needed and how much a first run downloads."""
    rows = []
    for name, spec in BACKBONES.items():
        if spec.is_local:
            available = (spec.local_path() / "unet" / "config.json").is_file()
        else:
            available = hub_cached(spec.source) and (
                not spec.adapter or hub_cached(spec.adapter, "config.json")
            )
        rows.append(
            {
                "name": name,
                "source": spec.source,
                "description": spec.description,
                "defaults": asdict(spec.defaults),
                "scheduler": spec.scheduler,
                "available_offline": available,
                "needs_gpu": spec.needs_gpu,
                "download_gb": 0.0 if available else spec.download_gb,
                "random_weights": name in list_random_configs(),
            }
        )
    return rows


_CACHE: dict[tuple, Backbone] = {}
_LOCK = threading.Lock()


def load_backbone(
    name_or_path: str = DEFAULT_BACKBONE,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    random_weights: bool = False,
    scheduler: str | None = None,
    cache: bool = True,
) -> Backbone:
    """Load a registry backbone, hub id or local diffusers folder as a StarVid pipeline.

    Args:
        name_or_path: a registry name, a folder, or a hub id ("owner/name", optionally
            "owner/name@revision": a branch, tag, commit or "refs/pr/N").
        device: CUDA when available by default; "meta" allocates nothing.
        dtype: fp16 on CUDA and fp32 elsewhere by default.
        random_weights: build a registry backbone at full size from the configs in
            assets/configs/ without downloading (time and memory benchmarks).
        scheduler: overrides the registry's choice: "dpmsolver++", "ddim" or "folder".
        cache: False loads afresh and keeps nothing (a folder a training run rewrites).

    Returns:
        A ``StarVidPipeline`` (UNet3D models) or ``StarVidAnimateDiffPipeline``, frozen and in
        eval mode, cached per source, device, dtype and scheduler.
    """
    dev = _resolve_device(device)
    if dtype is None:
        dtype = torch.float16 if dev.type == "cuda" else torch.float32
    if scheduler is not None and scheduler not in SCHEDULERS:
        choices = ", ".join(SCHEDULERS)
        raise StarVidError(f"unknown scheduler {scheduler!r}; choose one of {choices}")
    name, spec, folder_or_hub = _resolve_source(name_or_path)
    sched = scheduler or (spec.scheduler if spec else "folder")
    key = (folder_or_hub, str(dev), dtype, random_weights, sched)
    with _LOCK:
        if cache and key in _CACHE:
            return _CACHE[key]
        if random_weights:
            bb = _build_random(name, spec, dev, dtype, sched)
        else:
            folder = folder_or_hub
            if not isinstance(folder, Path):
                folder = fetch_hub(folder_or_hub, dtype)
            elif spec is not None and not folder.is_dir():
                raise StarVidError(f"the {name!r} backbone is missing from this checkout: {folder}")
            adapter = fetch_adapter(spec.adapter) if spec is not None and spec.adapter else None
            bb = load_folder(folder, name, spec, dev, dtype, sched, adapter)
            bb.source = str(name_or_path if spec is None else spec.source)
        if cache:
            _CACHE[key] = bb
        return bb


def clear_cache() -> None:
    """Forget loaded backbones (frees their memory once no caller holds them)."""
    with _LOCK:
        _CACHE.clear()


# ---------------------------------------------------------------------------------------------
# resolution of names, folders and hub ids


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise StarVidError(f"unknown device {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise StarVidError(f"device {device!r} requested but CUDA is not available here")
    return dev


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")


def _resolve_source(name_or_path: str | os.PathLike) -> tuple[str, BackboneSpec | None, object]:
    """-> (display name, registry spec or None, local Path or hub id string)."""
    text = str(name_or_path).strip()
    if not text:
        raise StarVidError("empty backbone name; choose one of " + ", ".join(BACKBONES))
    if text in BACKBONES:
        spec = BACKBONES[text]
        return text, spec, (spec.local_path() if spec.is_local else spec.source)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise StarVidError(f"backbone path is a file, not a model folder: {path}")
        return path.name, None, path.resolve()
    base, _, revision = text.partition("@")
    if base in BACKBONES and revision and not BACKBONES[base].is_local:
        spec = BACKBONES[base]
        return base, spec, f"{spec.source.partition('@')[0]}@{revision}"
    looks_like_path = text.startswith((".", "/", "~")) or "\\" in text or base.count("/") > 1
    if looks_like_path:
        raise StarVidError(f"backbone folder not found: {path}")
    if _HUB_ID.match(text):
        return text, None, text
    raise StarVidError(
        f"unknown backbone {text!r}: use one of {', '.join(BACKBONES)}, "
        "a hub id (owner/name) or a local diffusers folder"
    )


# ---------------------------------------------------------------------------------------------
# loading


def load_folder(
    folder: Path,
    name: str,
    spec: BackboneSpec | None,
    device: torch.device,
    dtype: torch.dtype,
    sched: str,
    adapter: Path | None = None,
) -> Backbone:
    """A model folder (and AnimateDiff's motion adapter folder) as a StarVid pipeline."""
    check_folder(folder, adapter)
    parts = load_components(folder, dtype, adapter)
    overrides = spec.scheduler_config if spec is not None else {}
    scheduler_cfg = read_json(folder / "scheduler" / "scheduler_config.json")
    parts["scheduler"] = make_scheduler(scheduler_cfg, sched, overrides)
    config = folder_config(folder)
    training = read_json(folder / "training.json") if (folder / "training.json").is_file() else {}
    if spec is not None:
        config["starvid_defaults"] = asdict(spec.defaults)
    elif training:
        # a shapes training run's folder runs like the shipped model, at its trained size
        base = config.get("starvid_defaults")
        base = BackboneDefaults.from_dict(base) if base else BACKBONES["shapes"].defaults
        config["starvid_defaults"] = asdict(trained_defaults(training, base))
    if training and "vocabulary" not in config:
        from starvid.shapes.world import VOCAB  # an older shapes folder: the world's words

        config["vocabulary"] = sorted(VOCAB)
    if training.get("model", {}).get("frame_positions") and "frame_positions" not in config:
        # a shapes folder saved before model_index.json named them
        config["frame_positions"] = MAX_FRAME_POSITIONS
    return _assemble(name, parts, device, dtype, config)


def trained_defaults(training: dict, base: BackboneDefaults) -> BackboneDefaults:
    """``base`` (the shapes backbone's defaults) at the size and frames of a training run."""
    model = training.get("model", {})
    size, frames = model.get("size", base.height), model.get("frames", base.frames)
    return replace(base, height=size, width=size, frames=frames)


def registry_defaults(source: str) -> BackboneDefaults | None:
    """The defaults of the registry backbone loaded from ``source`` (a hub id), if any."""
    for spec in BACKBONES.values():
        if source and source in (spec.source, spec.source.partition("@")[0]):
            return spec.defaults
    return None


def _assemble(name: str, parts: dict, device, dtype, config: dict) -> Backbone:
    """The pipeline of ``parts``: frozen weights, in eval mode, on ``device`` in ``dtype``."""
    for key in ("unet", "vae", "text_encoder"):
        m = parts.get(key)
        if m is None:
            continue
        # Guidance needs gradients w.r.t. latents only; frozen weights save memory.
        m.requires_grad_(False).eval()
        if device.type != "meta":
            m.to(device=device)
        first = next(m.parameters(), None)  # the pixel-shuffle VAE has no weights
        if first is not None and first.dtype != dtype:
            m.to(dtype=dtype)
    cls = StarVidPipeline if isinstance(parts["unet"], UNet3DConditionModel) else None
    if cls is None:
        cls = StarVidAnimateDiffPipeline
    pipe = cls(**parts, **config)
    if cls is StarVidAnimateDiffPipeline:
        pipe.unet.requires_grad_(False).eval()  # built from the SD U-Net and the adapter
        if device.type != "meta":
            pipe.unet.to(device=device, dtype=dtype)
        # the adapter's weights now live in the UNetMotionModel: keep them once
        pipe.register_modules(motion_adapter=None)
    pipe.set_progress_bar_config(disable=True)
    pipe.name = name
    return pipe


def _build_random(
    name: str,
    spec: BackboneSpec | None,
    device: torch.device,
    dtype: torch.dtype,
    sched: str,
) -> Backbone:
    """Full-size model from shipped configs, random init, nothing downloaded."""
    if spec is None:
        raise StarVidError(
            "random_weights needs a registry backbone with shipped configs: "
            + ", ".join(list_random_configs())
        )
    cfg_dir = CONFIGS_DIR / name if not spec.is_local else spec.local_path()
    configs = load_backbone_configs(name)
    # Build directly on the target device: initialising 1.4B parameters on CPU takes long.
    with torch.device(device):
        parts: dict = {}
        if configs["unet"].get("_class_name") == "UNet2DConditionModel":
            # AnimateDiff's U-Net, built here on the device (diffusers would build it on the
            # CPU and copy weights, which the meta device has none of)
            unet2d = UNet2DConditionModel.from_config(configs["unet"])
            adapter = MotionAdapter.from_config(configs["motion_adapter"])
            parts["unet"] = UNetMotionModel.from_unet2d(unet2d, adapter, load_weights=False)
            parts["motion_adapter"] = None
        else:
            parts["unet"] = UNet3DConditionModel.from_config(configs["unet"])
        vae_cls = vae_class(spec.local_path()) if spec.is_local else AutoencoderKL
        parts["vae"] = vae_cls.from_config(configs["vae"])
        parts["text_encoder"] = CLIPTextModel(CLIPTextConfig(**configs["text_encoder"]))
    tok_dir = cfg_dir / "tokenizer" if (cfg_dir / "tokenizer").is_dir() else TINY_DIR / "tokenizer"
    parts["tokenizer"] = CLIPTokenizer.from_pretrained(tok_dir)
    parts["scheduler"] = make_scheduler(configs["scheduler"], sched, spec.scheduler_config)
    bb = _assemble(name, parts, device, dtype, {"starvid_defaults": asdict(spec.defaults)})
    bb.source = f"{spec.source} (random weights)"
    bb.random_weights = True
    return bb


def list_random_configs() -> list[str]:
    """Registry names whose full configs ship in assets/ (usable with random_weights=True)."""
    return [
        n
        for n, s in BACKBONES.items()
        if (CONFIGS_DIR / n / "unet" / "config.json").is_file() or s.is_local
    ]


def load_backbone_configs(name: str) -> dict[str, dict]:
    """The shipped configs of a registry backbone: unet, vae, text_encoder, scheduler (and
    AnimateDiff's motion_adapter)."""
    if name not in BACKBONES:
        raise StarVidError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    spec = BACKBONES[name]
    base = spec.local_path() if spec.is_local else CONFIGS_DIR / name
    if not (base / "unet" / "config.json").is_file():
        raise StarVidError(f"no shipped configs for {name!r} (looked in {base})")
    configs = {p: read_json(base / p / "config.json") for p in WEIGHT_PARTS}
    configs["scheduler"] = read_json(base / "scheduler" / "scheduler_config.json")
    if (base / "motion_adapter" / "config.json").is_file():
        configs["motion_adapter"] = read_json(base / "motion_adapter" / "config.json")
    text = {k: v for k, v in configs["text_encoder"].items() if not k.startswith("_")}
    text.pop("architectures", None)
    configs["text_encoder"] = text
    return configs
