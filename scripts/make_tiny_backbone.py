"""Build the shipped `tiny` backbone in assets/tiny/ (diffusers text-to-video layout).

The model uses the same classes as ZeroScope/ModelScope (UNet3DConditionModel, AutoencoderKL,
CLIPTextModel, CLIPTokenizer) at toy sizes, with random weights from a fixed seed. It exists so the
whole pipeline (attention recording, guidance, export, UI) runs and is tested on CPU in seconds.

Two deliberate departures from plain random initialisation, both measured:
- cross-attention (attn2) query/key projections are scaled x8: with default init the softmax over
  77 tokens is nearly uniform, so noun maps are flat and latent guidance cannot move them;
- token embeddings are scaled up so that a token's identity, not its position, dominates the text
  encoder output (different words then give clearly different keys).

The tokenizer is the real CLIP BPE vocabulary (49408 entries, multi-token words exist). It is
converted from OpenAI's `bpe_simple_vocab_16e6.txt.gz` (MIT licence), e.g. the copy inside the
`open_clip_torch` wheel: `python scripts/make_tiny_backbone.py --bpe path/to/bpe...txt.gz`.
Without --bpe the script reuses the tokenizer files already in the output folder.

Usage: python scripts/make_tiny_backbone.py [--bpe FILE] [--out assets/tiny]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import tempfile
from pathlib import Path

import diffusers
import torch
import transformers
from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode  # GPT-2/CLIP byte alphabet

SEED = 20240923
ROOT = Path(__file__).resolve().parents[1]

# Cross-attention sharpening (see module docstring).
ATTN2_QK_SCALE = 8.0
TOKEN_EMBED_STD = 1.0

TEXT_CONFIG = dict(
    vocab_size=49408,
    hidden_size=32,
    intermediate_size=64,
    projection_dim=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    max_position_embeddings=77,
    hidden_act="gelu",
    layer_norm_eps=1e-5,
    bos_token_id=49406,
    eos_token_id=49407,
    pad_token_id=49407,
)

UNET_CONFIG = dict(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    down_block_types=["CrossAttnDownBlock3D", "DownBlock3D"],
    up_block_types=["UpBlock3D", "CrossAttnUpBlock3D"],
    block_out_channels=[32, 64],
    layers_per_block=1,
    norm_num_groups=8,
    # diffusers' historical naming: this is the number of heads (4 heads of 8/16 channels).
    attention_head_dim=4,
    cross_attention_dim=32,
)

VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 3,
    up_block_types=["UpDecoderBlock2D"] * 3,
    block_out_channels=[32, 64, 64],
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=8,
    sample_size=64,
    scaling_factor=0.18215,
)

# Same noise schedule as ModelScope / ZeroScope.
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    prediction_type="epsilon",
)


def convert_bpe(bpe_gz: Path, out_dir: Path) -> None:
    """Write CLIPTokenizer's vocab.json + merges.txt from OpenAI's BPE merge list."""
    lines = gzip.open(bpe_gz).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408, len(vocab)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(
        json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False), encoding="utf-8"
    )
    merge_lines = ["#version: 0.2"] + [" ".join(m) for m in merges]
    (out_dir / "merges.txt").write_text("\n".join(merge_lines) + "\n", encoding="utf-8")


def write_tokenizer(bpe: Path | None, out: Path) -> None:
    tok_dir = out / "tokenizer"
    if bpe is not None:
        convert_bpe(bpe, tok_dir)
    elif not (tok_dir / "vocab.json").exists():
        raise SystemExit(
            "no tokenizer in the output folder: pass --bpe bpe_simple_vocab_16e6.txt.gz"
        )
    # Keep only the slow-format files (as in real text-to-video folders) plus a small config.
    cfg = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "do_lower_case": True,
    }
    (tok_dir / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    tok = CLIPTokenizer.from_pretrained(tok_dir)
    ids = tok("a photo of a cat").input_ids
    # Known ids of OpenAI's CLIP tokenizer for this sentence: checks the conversion.
    assert ids == [49406, 320, 1125, 539, 320, 2368, 49407], ids


def build_text_encoder() -> CLIPTextModel:
    torch.manual_seed(SEED)
    model = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG)).eval()
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        emb.normal_(0.0, TOKEN_EMBED_STD)
    return model


def build_unet() -> UNet3DConditionModel:
    torch.manual_seed(SEED + 1)
    unet = UNet3DConditionModel(**UNET_CONFIG).eval()
    with torch.no_grad():
        for name, module in unet.named_modules():
            # Only text cross-attention: the temporal blocks' attn2 is self-attention over time.
            if name.endswith("attn2") and module.is_cross_attention:
                module.to_q.weight.mul_(ATTN2_QK_SCALE)
                module.to_k.weight.mul_(ATTN2_QK_SCALE)
    return unet


def build_vae() -> AutoencoderKL:
    torch.manual_seed(SEED + 2)
    return AutoencoderKL(**VAE_CONFIG).eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bpe", type=Path, default=None, help="bpe_simple_vocab_16e6.txt.gz")
    ap.add_argument("--out", type=Path, default=ROOT / "assets" / "tiny")
    args = ap.parse_args()
    diffusers.utils.logging.set_verbosity_error()  # fp16 cast notice is expected here
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_tokenizer(args.bpe, out)

    parts = {
        "text_encoder": build_text_encoder(),
        "unet": build_unet(),
        "vae": build_vae(),
    }
    for sub, model in parts.items():
        # Write to a temp dir first so a failed save never leaves a half-written folder.
        with tempfile.TemporaryDirectory() as tmp:
            model.to(torch.float16).save_pretrained(tmp, safe_serialization=True)
            shutil.rmtree(out / sub, ignore_errors=True)
            # copyfile, not copy2: temp dirs are private (0700) and the assets must not be.
            shutil.copytree(tmp, out / sub, copy_function=shutil.copyfile)
            (out / sub).chmod(0o755)
    DDIMScheduler(**SCHEDULER_CONFIG).save_pretrained(out / "scheduler")

    index = {
        "_class_name": "TextToVideoSDPipeline",
        "_diffusers_version": diffusers.__version__,
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet3DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({total / 1e6:.1f} MB; transformers {transformers.__version__})")
    for sub, model in parts.items():
        print(f"  {sub}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params")


if __name__ == "__main__":
    main()
