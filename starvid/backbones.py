"""Text-to-video backbones: registry, loading and the shipped `tiny` model.

A backbone is a diffusers U-Net text-to-video model in the usual folder layout (unet/, vae/,
text_encoder/, tokenizer/, scheduler/), loaded with diffusers' and transformers' own classes from
safetensors only. Registry names: `shapes` (shipped in assets/shapes, trained by the project on
its shapes world, the offline default), `tiny` (assets/tiny, random toy weights, CPU tests),
`zeroscope` and `modelscope` (hub ids). Any local folder or hub id in that layout also works.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    UNet3DConditionModel,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from starvid import DEFAULT_BACKBONE
from starvid.errors import StarVidError
from starvid.hub import PICKLE_SUFFIXES, WEIGHT_PARTS, fetch_hub, hub_cached

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
TINY_DIR = ASSETS_DIR / "tiny"
CONFIGS_DIR = ASSETS_DIR / "configs"

_SCHEDULERS = ("dpmsolver++", "ddim", "folder")
# VAE classes a folder's model_index.json may name. An allow-list, never an import of whatever
# module a user's folder asks for; the shapes model's weight-free pixel-shuffle "VAE" is ours.
_VAE_CLASSES = {("diffusers", "AutoencoderKL"), ("starvid.shapes.model", "PixelShuffleVAE")}


@dataclass(frozen=True)
class BackboneDefaults:
    """Generation defaults a backbone was trained for."""

    height: int
    width: int
    frames: int
    steps: int
    cfg_scale: float
    fps: int
    # Guidance step (RMS-normalized). A small model's few, coarse latent cells move far per
    # unit step: on the shapes model 0.3 split and merged objects; 0.05 kept them intact.
    step_size: float = 0.3
    # Cross-attention layers the losses read ("low", "mid", "all" or name prefixes). "low" (the
    # coarse layers) suits large models; at 32x32 the shapes model's 4x4 maps cannot tell two
    # neighbouring objects apart, so guidance grew and merged them: it needs its 8x8 layers.
    record_layers: str = "low"
    # Recompute layers in the backward pass of gradient iterations instead of keeping their
    # activations (starvid.checkpointing): less memory, one more partial forward per iteration.
    checkpointing: bool = False


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

    @property
    def is_local(self) -> bool:
        return self.source.startswith("assets/")

    def local_path(self) -> Path:
        return ASSETS_DIR.parent / self.source


# The shapes model's one 8x8 down layer: its maps tell neighbouring objects apart (the 4x4 ones
# cannot), gradient iterations stop right after it (29 against 94 ms), and it scored best (100
# tuning captions: numeracy 67 against 56 %, binding 51 against 28 %; README, Status).
SHAPES_RECORD_LAYERS = "down_blocks.0"
# ZeroScope and ModelScope share one architecture: 1,835 M parameters (U-Net 1,411 M, text
# encoder 340 M, VAE 84 M; counted on the meta device from assets/configs), 3.7 GB in fp16.
FULL_SIZE_FP16_GB = 3.7

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
        # A gradient iteration at 576x320x24 keeps 29 GiB of activations (bf16): too much for a
        # 24 GB card; recomputing layers keeps 3.1 GiB (benchmarks/guidance_cost.py --estimate).
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
}


@dataclass
class Backbone:
    """A loaded text-to-video model: its parts, where they run, and its defaults.

    Cached and shared by `load_backbone`: callers that change the UNet (attention processors)
    must restore it afterwards. `scheduler` is a template: make a fresh one per run with
    `type(s).from_config(s.config)`.
    """

    name: str
    unet: UNet3DConditionModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    scheduler: SchedulerMixin
    device: torch.device
    dtype: torch.dtype
    defaults: BackboneDefaults
    source: str = ""
    random_weights: bool = False
    # Words the model was trained on; None for open-vocabulary models. Prompts with other words
    # still run (the tokenizer splits them) but get a warning in the run report.
    vocabulary: frozenset[str] | None = None

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent cell along each side."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def new_scheduler(self) -> SchedulerMixin:
        """A fresh scheduler of the template's class and config (schedulers keep state)."""
        return type(self.scheduler).from_config(self.scheduler.config)

    def info(self) -> dict:
        """Plain-JSON description for run reports: source, dtype, parameter counts."""

        def count(m: torch.nn.Module) -> int:
            return sum(p.numel() for p in m.parameters())

        return {
            "name": self.name,
            "source": self.source,
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
            available = hub_cached(spec.source)
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
    """Load a registry backbone, hub id or local diffusers folder (cached per name/device/dtype).

    A hub id may name a revision (branch, tag, commit or "refs/pr/N") as "owner/name@revision".

    Defaults: CUDA when available, fp16 on CUDA and fp32 elsewhere. `random_weights=True` builds
    a registry backbone at full size from the configs in assets/configs/ without downloading
    (for time and memory benchmarks); with device="meta" nothing is allocated.
    `scheduler` overrides the registry choice: "dpmsolver++", "ddim" or "folder".
    `cache=False` loads afresh and keeps nothing (a folder a training run rewrites in place).
    """
    dev = _resolve_device(device)
    if dtype is None:
        dtype = torch.float16 if dev.type == "cuda" else torch.float32
    if scheduler is not None and scheduler not in _SCHEDULERS:
        choices = ", ".join(_SCHEDULERS)
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
            bb = load_folder(folder, name, spec, dev, dtype, sched)
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


def _weights_variant(folder: Path, part: str) -> str | None:
    """None for plain safetensors, "fp16" when only the fp16 variant exists; else explain."""
    sub = folder / part
    stem = WEIGHT_PARTS[part]
    if (sub / f"{stem}.safetensors").is_file() or (
        sub / f"{stem}.safetensors.index.json"
    ).is_file():
        return None
    if (sub / f"{stem}.fp16.safetensors").is_file() or (
        sub / f"{stem}.safetensors.index.fp16.json"
    ).is_file():
        return "fp16"
    pickles = sorted(p.name for p in sub.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise StarVidError(
            f"{sub} has only pickle weights ({', '.join(pickles)}); StarVid loads safetensors "
            "only: convert them with save_pretrained(safe_serialization=True)"
        )
    raise StarVidError(f"no {stem}.safetensors weights in {sub}")


def _check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise StarVidError(f"backbone folder not found: {folder}")
    required = [f"{p}/config.json" for p in WEIGHT_PARTS] + ["scheduler/scheduler_config.json"]
    for rel in required:
        if not (folder / rel).is_file():
            raise StarVidError(f"not a diffusers text-to-video folder: missing {rel} in {folder}")
    tok = folder / "tokenizer"
    if not (
        (tok / "tokenizer.json").is_file()
        or ((tok / "vocab.json").is_file() and (tok / "merges.txt").is_file())
    ):
        raise StarVidError(
            f"not a diffusers text-to-video folder: missing tokenizer/vocab.json in {folder}"
        )
    unet_cfg = _read_json(folder / "unet" / "config.json")
    if unet_cfg.get("_class_name", "UNet3DConditionModel") != "UNet3DConditionModel":
        raise StarVidError(
            f"{folder}/unet is a {unet_cfg.get('_class_name')}, StarVid needs a "
            "UNet3DConditionModel (U-Net text-to-video model)"
        )


def _make_scheduler(config: dict, kind: str) -> SchedulerMixin:
    if kind == "dpmsolver++":
        return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++")
    if kind == "ddim":
        return DDIMScheduler.from_config(config)
    import diffusers

    cls = getattr(diffusers, str(config.get("_class_name", "")), None)
    if not (isinstance(cls, type) and issubclass(cls, SchedulerMixin)):
        cls = DDIMScheduler
    return cls.from_config(config)


def _read_json(path: Path) -> dict:
    """A config file as a dict; a one-line error when it is unreadable, not JSON or not an
    object (configs come from users' folders)."""
    try:
        if path.stat().st_size > 10 * 2**20:
            raise StarVidError(f"config {path} is too large for a config file")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise StarVidError(f"unreadable config {path}: {reason}") from exc
    if not isinstance(data, dict):
        raise StarVidError(f"config {path} must be a JSON object, not {type(data).__name__}")
    return data


def load_folder(
    folder: Path,
    name: str,
    spec: BackboneSpec | None,
    device: torch.device,
    dtype: torch.dtype,
    sched: str,
) -> Backbone:
    _check_folder(folder)
    variants = {part: _weights_variant(folder, part) for part in WEIGHT_PARTS}
    common = dict(use_safetensors=True, local_files_only=True)
    try:
        unet = UNet3DConditionModel.from_pretrained(
            folder, subfolder="unet", torch_dtype=dtype, variant=variants["unet"], **common
        )
        vae = _vae_class(folder).from_pretrained(
            folder, subfolder="vae", torch_dtype=dtype, variant=variants["vae"], **common
        )
        text_encoder = _quietly(
            CLIPTextModel.from_pretrained,
            folder,
            subfolder="text_encoder",
            dtype=dtype,
            variant=variants["text_encoder"],
            **common,
        )
        tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")
    except (OSError, ValueError, RuntimeError, TypeError, KeyError, AttributeError) as exc:
        # a user's folder with a config the classes cannot take: say so in one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise StarVidError(f"could not load the model in {folder}: {first}") from exc
    scheduler = _make_scheduler(_read_json(folder / "scheduler" / "scheduler_config.json"), sched)
    defaults = spec.defaults if spec else _guess_defaults(unet, vae)
    shapes_model = (folder / "training.json").is_file()  # a shapes-world model of the project
    if shapes_model and spec is None:
        defaults = trained_defaults(folder)  # a training run's folder runs like the shipped one
    bb = _assemble(name, unet, vae, text_encoder, tokenizer, scheduler, device, dtype, defaults)
    if shapes_model:
        from starvid.shapes.model import add_frame_positions, read_training_info
        from starvid.shapes.world import VOCAB

        bb.vocabulary = frozenset(VOCAB)
        if read_training_info(folder).get("model", {}).get("frame_positions"):
            add_frame_positions(bb.unet)
    return bb


def trained_defaults(folder: Path) -> BackboneDefaults:
    """The shipped shapes backbone's defaults at the size and frames `folder` was trained at."""
    from starvid.shapes.model import read_training_info

    base = BACKBONES["shapes"].defaults
    model = read_training_info(folder).get("model", {})
    size, frames = model.get("size", base.height), model.get("frames", base.frames)
    return replace(base, height=size, width=size, frames=frames)


def _vae_class(folder: Path) -> type:
    """The VAE class named by the folder's model_index.json (AutoencoderKL when unnamed)."""
    index = folder / "model_index.json"
    entry = _read_json(index).get("vae") if index.is_file() else None
    key = tuple(entry) if isinstance(entry, list) and len(entry) == 2 else None
    if key is None or key == ("diffusers", "AutoencoderKL"):
        return AutoencoderKL
    if key not in _VAE_CLASSES:
        raise StarVidError(
            f"{folder}: unsupported VAE class {'.'.join(key)} (supported: "
            + ", ".join(".".join(k) for k in _VAE_CLASSES)
            + ")"
        )
    from starvid.shapes.model import PixelShuffleVAE  # the one other class on the list

    return PixelShuffleVAE


def _quietly(fn, *args, **kwargs):
    """Call a transformers loader without its per-load progress bar (noise in CLI output)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return fn(*args, **kwargs)
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _assemble(name, unet, vae, text_encoder, tokenizer, scheduler, device, dtype, defaults):
    for m in (unet, vae, text_encoder):
        # Guidance needs gradients w.r.t. latents only; frozen weights save memory.
        m.requires_grad_(False).eval()
        if device.type != "meta":
            m.to(device=device)
        first = next(m.parameters(), None)  # the pixel-shuffle VAE has no weights
        if first is not None and first.dtype != dtype:
            m.to(dtype=dtype)
    return Backbone(
        name=name,
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        device=device,
        dtype=dtype,
        defaults=defaults,
    )


def _guess_defaults(unet: UNet3DConditionModel, vae: AutoencoderKL) -> BackboneDefaults:
    """Defaults for an unregistered folder: its training resolution, 16 frames."""
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    side = int(unet.config.sample_size or 32) * scale
    # an unknown folder is most likely a full-size model: save memory unless told otherwise
    return BackboneDefaults(
        height=side, width=side, frames=16, steps=25, cfg_scale=9.0, fps=8, checkpointing=True
    )


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
        unet = UNet3DConditionModel.from_config(configs["unet"])
        vae_cls = _vae_class(spec.local_path()) if spec.is_local else AutoencoderKL
        vae = vae_cls.from_config(configs["vae"])
        text_encoder = CLIPTextModel(CLIPTextConfig(**configs["text_encoder"]))
    tok_dir = cfg_dir / "tokenizer" if (cfg_dir / "tokenizer").is_dir() else TINY_DIR / "tokenizer"
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    scheduler = _make_scheduler(configs["scheduler"], sched)
    parts = (unet, vae, text_encoder, tokenizer, scheduler)
    bb = _assemble(name, *parts, device, dtype, spec.defaults)
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
    """The shipped configs of a registry backbone: unet, vae, text_encoder, scheduler."""
    if name not in BACKBONES:
        raise StarVidError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    spec = BACKBONES[name]
    base = spec.local_path() if spec.is_local else CONFIGS_DIR / name
    if not (base / "unet" / "config.json").is_file():
        raise StarVidError(f"no shipped configs for {name!r} (looked in {base})")
    configs = {p: _read_json(base / p / "config.json") for p in WEIGHT_PARTS}
    configs["scheduler"] = _read_json(base / "scheduler" / "scheduler_config.json")
    text = {k: v for k, v in configs["text_encoder"].items() if not k.startswith("_")}
    text.pop("architectures", None)
    configs["text_encoder"] = text
    return configs
