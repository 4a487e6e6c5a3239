"""A tiny random-weight AnimateDiff (SD-style U-Net + motion adapter) for CPU tests.

The same diffusers classes as Stable Diffusion 1.5 and its motion adapter, at the shipped tiny
backbone's sizes (its text encoder, tokenizer and VAE), with the tiny model's one departure from
plain random init: the spatial cross-attention's query/key scaled x8, so that word maps are not
flat and guidance has something to move (scripts/make_tiny_backbone.py says why).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from starvid.backbones import BACKBONES, TINY_DIR
from starvid.pipelines import StarVidAnimateDiffPipeline

SEED = 20240923
ATTN2_QK_SCALE = 8.0
UNET = dict(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(32, 64),
    layers_per_block=1,
    norm_num_groups=8,
    attention_head_dim=4,
    cross_attention_dim=32,
)
ADAPTER = dict(
    block_out_channels=(32, 64),
    motion_layers_per_block=1,
    motion_num_attention_heads=2,
    motion_norm_num_groups=8,
    motion_max_seq_length=32,
    use_motion_mid_block=False,
)


def build_parts() -> dict:
    """The pipeline's components, from fixed seeds."""
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(**UNET).eval()
    with torch.no_grad():
        for name, module in unet.named_modules():
            if name.endswith("attn2") and module.is_cross_attention:
                module.to_q.weight.mul_(ATTN2_QK_SCALE)
                module.to_k.weight.mul_(ATTN2_QK_SCALE)
    torch.manual_seed(SEED + 1)
    adapter = MotionAdapter(**ADAPTER).eval()
    tiny = Path(TINY_DIR)
    return {
        "vae": AutoencoderKL.from_pretrained(tiny / "vae", use_safetensors=True),
        "text_encoder": CLIPTextModel.from_pretrained(tiny / "text_encoder", dtype=torch.float32),
        "tokenizer": CLIPTokenizer.from_pretrained(tiny / "tokenizer"),
        "unet": unet,
        "motion_adapter": adapter,
        "scheduler": DDIMScheduler.from_pretrained(tiny / "scheduler"),
    }


def save_tiny_animatediff(out: Path) -> Path:
    """Write the tiny AnimateDiff pipeline (safetensors) into ``out``, with the tiny backbone's
    generation defaults in its config."""
    defaults = asdict(BACKBONES["tiny"].defaults)
    pipe = StarVidAnimateDiffPipeline(**build_parts(), starvid_defaults=defaults)
    pipe.save_pretrained(out, safe_serialization=True)
    return out


def save_sd_and_adapter(out: Path) -> tuple[Path, Path]:
    """The same model as an SD checkpoint folder (the layout fetch_hub keeps of an SD repo:
    unet/, vae/, text_encoder/, tokenizer/, scheduler/, model_index.json) and a motion adapter
    folder, as AnimateDiff is published."""
    parts = build_parts()
    sd, adapter = out / "sd", out / "adapter"
    for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        parts[name].save_pretrained(sd / name)
    index = {
        "_class_name": "StableDiffusionPipeline",
        "feature_extractor": [None, None],
        "safety_checker": [None, None],
        "requires_safety_checker": False,
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (sd / "model_index.json").write_text(json.dumps(index, indent=2))
    parts["motion_adapter"].save_pretrained(adapter)
    return sd, adapter
