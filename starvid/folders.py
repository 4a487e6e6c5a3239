"""Model folders to StarVid pipelines: checks with one-line errors, safetensors only.

A folder in the diffusers layout (unet/, vae/, text_encoder/, tokenizer/, scheduler/) becomes a
``StarVidPipeline`` when its U-Net is a ``UNet3DConditionModel``, and a
``StarVidAnimateDiffPipeline`` when it is a Stable Diffusion U-Net (``UNet2DConditionModel``)
given with a motion adapter (a ``motion_adapter/`` subfolder or a separate adapter folder), or an
AnimateDiff pipeline saved with its ``UNetMotionModel``. Components load with diffusers' and
transformers' own classes; a user's folder that does not fit says what is wrong in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    MotionAdapter,
    UNet2DConditionModel,
    UNet3DConditionModel,
    UNetMotionModel,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from transformers import CLIPTextModel, CLIPTokenizer

from starvid.errors import StarVidError
from starvid.hub import PICKLE_SUFFIXES, WEIGHT_PARTS
from starvid.pixel_vae import PixelShuffleVAE

SCHEDULERS = ("dpmsolver++", "ddim", "folder")
# VAE classes a folder's model_index.json may name. An allow-list, never an import of whatever
# module a user's folder asks for; the shapes model's weight-free pixel-shuffle "VAE" is ours
# (older shapes folders name it under starvid.shapes.model).
VAE_CLASSES = {
    ("diffusers", "AutoencoderKL"): AutoencoderKL,
    ("starvid.pixel_vae", "PixelShuffleVAE"): PixelShuffleVAE,
    ("starvid.shapes.model", "PixelShuffleVAE"): PixelShuffleVAE,
}
UNET_CLASSES = {
    "UNet3DConditionModel": UNet3DConditionModel,
    "UNetMotionModel": UNetMotionModel,
    "UNet2DConditionModel": UNet2DConditionModel,
}


def read_json(path: Path) -> dict:
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


def weights_variant(folder: Path, part: str, stem: str | None = None) -> str | None:
    """None for plain safetensors, "fp16" when only the fp16 variant exists; else explain."""
    sub = folder / part if part else folder
    stem = stem or WEIGHT_PARTS[part]
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


def unet_class_name(folder: Path) -> str:
    """The folder's U-Net class; refuses the ones StarVid cannot guide."""
    cfg = read_json(folder / "unet" / "config.json")
    name = str(cfg.get("_class_name", "UNet3DConditionModel"))
    if name not in UNET_CLASSES:
        raise StarVidError(
            f"{folder}/unet is a {name}, StarVid needs a UNet3DConditionModel (U-Net "
            "text-to-video model) or an AnimateDiff U-Net (UNet2DConditionModel with a motion "
            "adapter, or UNetMotionModel)"
        )
    return name


def check_folder(folder: Path, adapter: Path | None = None) -> None:
    """A one-line error unless ``folder`` has the parts of a text-to-video model."""
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
    if (
        unet_class_name(folder) == "UNet2DConditionModel"
        and motion_adapter_folder(folder, adapter) is None
    ):
        raise StarVidError(
            f"{folder}/unet is an image U-Net (UNet2DConditionModel): StarVid runs it as "
            "AnimateDiff, which needs a motion adapter (a motion_adapter/ subfolder or the "
            "registry's animatediff)"
        )


def motion_adapter_folder(folder: Path, adapter: Path | None) -> Path | None:
    """The motion adapter's folder: the one given, or the model folder's motion_adapter/."""
    if adapter is not None:
        return adapter
    sub = folder / "motion_adapter"
    return sub if (sub / "config.json").is_file() else None


def make_scheduler(config: dict, kind: str, overrides: dict | None = None) -> SchedulerMixin:
    """The run's scheduler from a folder's config: DPM-Solver++, DDIM or the folder's own."""
    config = {**config, **(overrides or {})}
    if kind == "dpmsolver++":
        return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++")
    if kind == "ddim":
        return DDIMScheduler.from_config(config)
    import diffusers

    cls = getattr(diffusers, str(config.get("_class_name", "")), None)
    if not (isinstance(cls, type) and issubclass(cls, SchedulerMixin)):
        cls = DDIMScheduler
    return cls.from_config(config)


def vae_class(folder: Path) -> type:
    """The VAE class named by the folder's model_index.json (AutoencoderKL when unnamed)."""
    index = folder / "model_index.json"
    entry = read_json(index).get("vae") if index.is_file() else None
    key = tuple(entry) if isinstance(entry, list) and len(entry) == 2 else None
    if key is None:
        return AutoencoderKL
    if key not in VAE_CLASSES:
        raise StarVidError(
            f"{folder}: unsupported VAE class {'.'.join(key)} (supported: "
            + ", ".join(".".join(k) for k in VAE_CLASSES)
            + ")"
        )
    return VAE_CLASSES[key]


def load_components(
    folder: Path, dtype: torch.dtype, adapter: Path | None = None
) -> dict[str, object]:
    """The folder's components by pipeline argument name (without the scheduler)."""
    variants = {part: weights_variant(folder, part) for part in WEIGHT_PARTS}
    common = dict(use_safetensors=True, local_files_only=True)
    unet_cls = UNET_CLASSES[unet_class_name(folder)]
    try:
        parts = {
            "unet": unet_cls.from_pretrained(
                folder, subfolder="unet", dtype=dtype, variant=variants["unet"], **common
            ),
            "vae": vae_class(folder).from_pretrained(
                folder, subfolder="vae", dtype=dtype, variant=variants["vae"], **common
            ),
            "text_encoder": _quietly(
                CLIPTextModel.from_pretrained,
                folder,
                subfolder="text_encoder",
                dtype=dtype,
                variant=variants["text_encoder"],
                **common,
            ),
            "tokenizer": CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer"),
        }
        motion = motion_adapter_folder(folder, adapter)
        if unet_cls is not UNet3DConditionModel:
            parts["motion_adapter"] = None
            if motion is not None:
                variant = weights_variant(motion, "", "diffusion_pytorch_model")
                parts["motion_adapter"] = MotionAdapter.from_pretrained(
                    motion, dtype=dtype, variant=variant, **common
                )
    except (OSError, ValueError, RuntimeError, TypeError, KeyError, AttributeError) as exc:
        # a user's folder with a config the classes cannot take: say so in one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise StarVidError(f"could not load the model in {folder}: {first}") from exc
    return parts


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


def folder_config(folder: Path) -> dict:
    """The StarVid entries of the folder's model_index.json: defaults, vocabulary and the
    U-Net's frame positions."""
    index = folder / "model_index.json"
    data = read_json(index) if index.is_file() else {}
    keys = ("starvid_defaults", "vocabulary", "frame_positions")
    return {k: data[k] for k in keys if data.get(k)}
