"""The shapes model: a small pixel-space text-to-video U-Net and a CLIP encoder of the world words.

Videos (32x32, 8 frames, RGB in [-1, 1]) are pixel-unshuffled 4x4 into 8x8 "latents" with 48
channels, the space diffusers' ``UNet3DConditionModel`` works in here (16x16 inside the model cost
several times more per step; docs/results.md). ``PixelShuffleVAE`` (``starvid.pixel_vae``) is
the exact, weight-free map between the two, with the ``encode``/``decode``/``config`` surface the
pipeline uses from an ``AutoencoderKL``. The text encoder is a ``CLIPTextModel`` built from a
config, with a ``CLIPTokenizer`` whose BPE files are generated so that every world word is one
token.

The model folder has the diffusers layout of ``assets/tiny`` (unet/, vae/, text_encoder/,
tokenizer/, scheduler/, model_index.json), safetensors only; ``starvid.backbones.load_backbone``
loads it (``cache=False`` for a folder a training run rewrites).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet3DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode  # GPT-2/CLIP byte alphabet

from starvid.assets import ASSETS_DIR
from starvid.errors import StarVidError
from starvid.folders import folder_config
from starvid.pipelines.text_to_video import MAX_FRAME_POSITIONS, add_frame_positions
from starvid.pixel_vae import PixelShuffleVAE  # noqa: F401 - folders name it here too
from starvid.shapes.world import VOCAB

SHAPES_DIR = ASSETS_DIR / "shapes"
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
PREDICTIONS = ("sample", "v_prediction")


@dataclass(frozen=True)
class ShapesModelConfig:
    """Sizes of the shapes model (defaults: about 4.6 M U-Net parameters)."""

    size: int = 32
    frames: int = 8
    patch: int = 4  # pixel-unshuffle factor: 32x32x3 -> 8x8x48
    channels: tuple[int, ...] = (64, 96)
    heads: int = 4
    text_hidden: int = 64
    text_layers: int = 2
    text_heads: int = 2
    # What the U-Net predicts: "sample" (the clean latents, x0) or "v_prediction". x0 suits
    # pixel-space patches: clean world frames are simple, the per-pixel noise is not (a v model
    # left visible noise on every sample; see the model card, assets/shapes/README.md).
    prediction: str = "sample"
    # Sinusoidal frame positions in the temporal attention blocks (diffusers' own
    # ``positional_embeddings="sinusoidal"`` of BasicTransformerBlock, as AnimateDiff's motion
    # modules use). Without them only the zero padding of the temporal convolutions tells one
    # frame from another, and a small model learns "where" long before "which way it moves".
    frame_positions: bool = False

    def __post_init__(self):
        if self.prediction not in PREDICTIONS:
            raise StarVidError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")

    @property
    def latent_channels(self) -> int:
        return 3 * self.patch * self.patch

    @property
    def latent_size(self) -> int:
        return self.size // self.patch


# -- tokenizer --------------------------------------------------------------------------------


def write_tokenizer(out_dir: Path, words: tuple[str, ...] = VOCAB) -> CLIPTokenizer:
    """Write a CLIPTokenizer (vocab.json, merges.txt, config) where each of `words` is one token.

    The base alphabet (every byte, alone and word-final) keeps any other text tokenizable; each
    world word gets a left-to-right chain of merges ending in the whole word.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    alphabet = list(bytes_to_unicode().values())
    vocab = alphabet + [c + "</w>" for c in alphabet]
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for w in words:
        # Add merges until this word is one token. New merges rank last, so words already
        # done (which always had a better-ranked merge to apply) keep their single token.
        while len(pieces := _bpe(list(w[:-1]) + [w[-1] + "</w>"], ranks)) > 1:
            pair = (pieces[0], pieces[1])
            ranks[pair] = len(merges)
            merges.append(pair)
            vocab.append(pair[0] + pair[1])
    vocab += [BOS, EOS]
    (out_dir / "vocab.json").write_text(
        json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False), encoding="utf-8"
    )
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (out_dir / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "pad_token": EOS,
        "do_lower_case": True,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    tok = CLIPTokenizer.from_pretrained(out_dir)
    for w in words:
        ids = tok(w, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise StarVidError(f"tokenizer check: {w!r} became {len(ids)} tokens")
    return tok


def _bpe(pieces: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """CLIP's BPE on one word: merge the best-ranked adjacent pair everywhere, repeat."""
    while len(pieces) > 1:
        pairs = {(a, b) for a, b in zip(pieces, pieces[1:], strict=False) if (a, b) in ranks}
        if not pairs:
            break
        a, b = min(pairs, key=ranks.__getitem__)
        out, i = [], 0
        while i < len(pieces):
            if i + 1 < len(pieces) and pieces[i] == a and pieces[i + 1] == b:
                out.append(a + b)
                i += 2
            else:
                out.append(pieces[i])
                i += 1
        pieces = out
    return pieces


def build_tokenizer() -> CLIPTokenizer:
    """A world tokenizer in a temporary folder (training from scratch, tests)."""
    return write_tokenizer(Path(tempfile.mkdtemp(prefix="shapes-tok-")))


def tokenize(tokenizer: CLIPTokenizer, captions: list[str]) -> torch.Tensor:
    """Token ids ``(batch, 77)``, padded like the pipeline pads them."""
    return tokenizer(
        captions,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


# -- model parts ------------------------------------------------------------------------------


def build_text_encoder(tokenizer: CLIPTokenizer, cfg: ShapesModelConfig) -> CLIPTextModel:
    """A small CLIP text encoder over the world tokenizer's vocabulary, random init."""
    conf = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.text_hidden,
        intermediate_size=cfg.text_hidden * 2,
        projection_dim=cfg.text_hidden,
        num_hidden_layers=cfg.text_layers,
        num_attention_heads=cfg.text_heads,
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(conf)


def build_unet(cfg: ShapesModelConfig) -> UNet3DConditionModel:
    """The video U-Net: cross-attention at 8x8 and 4x4, random init."""
    unet = _unet_from_sizes(cfg)
    if cfg.frame_positions:
        add_frame_positions(unet)
    return unet


def _unet_from_sizes(cfg: ShapesModelConfig) -> UNet3DConditionModel:
    n = len(cfg.channels)
    return UNet3DConditionModel(
        sample_size=cfg.latent_size,
        in_channels=cfg.latent_channels,
        out_channels=cfg.latent_channels,
        down_block_types=("CrossAttnDownBlock3D",) * n,
        up_block_types=("CrossAttnUpBlock3D",) * n,
        block_out_channels=cfg.channels,
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=cfg.text_hidden,
        attention_head_dim=cfg.heads,
    )


def scheduler_config(prediction: str = "sample") -> dict:
    """Noise schedule shared by training (DDPM) and sampling (DDIM): cosine, given prediction."""
    return dict(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type=prediction,
        clip_sample=False,
    )


def build_train_scheduler(prediction: str = "sample") -> DDPMScheduler:
    """The training scheduler (its ``alphas_cumprod`` noise the batches)."""
    return DDPMScheduler(**scheduler_config(prediction))


def build_sample_scheduler(prediction: str = "sample") -> DDIMScheduler:
    """The sampling scheduler saved with the model."""
    return DDIMScheduler(
        **scheduler_config(prediction),
        timestep_spacing="trailing",
        set_alpha_to_one=True,
        steps_offset=0,
    )


def video_to_latents(video: np.ndarray | torch.Tensor, patch: int = 4) -> torch.Tensor:
    """uint8 videos ``(b, f, H, W, 3)`` -> latents ``(b, 3*p*p, f, H/p, W/p)`` in [-1, 1]."""
    v = torch.as_tensor(video)
    if v.ndim != 5 or v.shape[-1] != 3:
        raise StarVidError(f"videos must be (batch, frames, h, w, 3), got {tuple(v.shape)}")
    b, f, h, w, _ = v.shape
    x = v.float().div(127.5).sub(1.0).permute(0, 1, 4, 2, 3).reshape(b * f, 3, h, w)
    z = F.pixel_unshuffle(x, patch)
    return z.reshape(b, f, *z.shape[1:]).permute(0, 2, 1, 3, 4).contiguous()


def latents_to_video(z: torch.Tensor, patch: int = 4) -> np.ndarray:
    """Latents ``(b, C, f, h, w)`` -> uint8 videos ``(b, f, H, W, 3)``."""
    b, c, f, h, w = z.shape
    x = F.pixel_shuffle(z.detach().float().permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w), patch)
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.reshape(b, f, 3, h * patch, w * patch).permute(0, 1, 3, 4, 2).cpu().numpy()


# -- saving and loading -----------------------------------------------------------------------


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor], dtype=None) -> None:
    data = {
        k: (v.to(dtype) if dtype and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in tensors.items()
    }
    _atomic_write(path, lambda tmp: save_file(data, tmp, metadata={"format": "pt"}))


def _save_json(path: Path, obj: dict) -> None:
    if isinstance(obj.get("_use_default_values"), list):  # diffusers fills it from a set
        obj = {**obj, "_use_default_values": sorted(obj["_use_default_values"])}
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    _atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def save_model(
    out: Path,
    unet: UNet3DConditionModel,
    text_encoder: CLIPTextModel,
    tokenizer: CLIPTokenizer,
    cfg: ShapesModelConfig,
    dtype: torch.dtype = torch.float16,
    extra: dict | None = None,
) -> None:
    """Write the model folder (diffusers layout, safetensors), each file atomically in place.

    Weights go first and ``training.json`` (with `extra`, e.g. the step) last, so a reader that
    sees a new training.json sees the weights it describes.
    """
    out = Path(out)
    _save_tensors(out / "unet" / "diffusion_pytorch_model.safetensors", unet.state_dict(), dtype)
    _save_json(out / "unet" / "config.json", dict(unet.config))
    _save_tensors(out / "text_encoder" / "model.safetensors", text_encoder.state_dict(), dtype)
    te_cfg = text_encoder.config.to_dict()
    te_cfg["dtype"] = str(dtype).replace("torch.", "")
    _save_json(out / "text_encoder" / "config.json", te_cfg)
    tok_dir = out / "tokenizer"
    if Path(tokenizer.name_or_path).resolve() != tok_dir.resolve():
        write_tokenizer(tok_dir)
    vae = PixelShuffleVAE(
        patch=cfg.patch,
        latent_channels=cfg.latent_channels,
        block_out_channels=(cfg.latent_channels,) * (int(np.log2(cfg.patch)) + 1),
        sample_size=cfg.size,
    )
    _save_json(out / "vae" / "config.json", dict(vae.config))
    # No weights, but an (empty) safetensors file keeps the folder a complete diffusers model:
    # PixelShuffleVAE.from_pretrained(out, subfolder="vae") loads it.
    _save_tensors(out / "vae" / "diffusion_pytorch_model.safetensors", {})
    sched = build_sample_scheduler(cfg.prediction)
    _save_json(out / "scheduler" / "scheduler_config.json", dict(sched.config))
    index = {
        "_class_name": "TextToVideoSDPipeline",
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet3DConditionModel"],
        "vae": ["starvid.pixel_vae", "PixelShuffleVAE"],
    } | _starvid_entries(out, cfg)
    if cfg.frame_positions:
        index["frame_positions"] = MAX_FRAME_POSITIONS
    _save_json(out / "model_index.json", index)
    _save_json(out / "training.json", {"model": asdict(cfg), **(extra or {})})


def _starvid_entries(out: Path, cfg: ShapesModelConfig) -> dict:
    """The StarVid entries of a model folder's ``model_index.json`` (generation defaults and the
    world's vocabulary, which ``StarVidPipeline.from_pretrained`` reads): the folder's own
    defaults when it has them (a resumed run keeps what was tuned for it), else the shipped
    model's, at this model's size and frames."""
    for folder in (out, SHAPES_DIR):
        defaults = folder_config(folder).get("starvid_defaults")
        if defaults:
            sized = {"height": cfg.size, "width": cfg.size, "frames": cfg.frames}
            return {"starvid_defaults": defaults | sized, "vocabulary": sorted(VOCAB)}
    return {"vocabulary": sorted(VOCAB)}


def read_training_info(folder: Path = SHAPES_DIR) -> dict:
    """The folder's training.json (model config, step, ...), or {} when there is none."""
    p = Path(folder) / "training.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}


def load_parts(folder: Path = SHAPES_DIR, dtype: torch.dtype = torch.float32):
    """(unet, text_encoder, tokenizer, cfg) from a saved model folder, weights as `dtype`."""
    folder = Path(folder)
    if not (folder / "unet" / "diffusion_pytorch_model.safetensors").is_file():
        raise StarVidError(
            f"no shapes model in {folder} (train one: python -m starvid.shapes.train)"
        )
    info = read_training_info(folder)
    m = dict(info.get("model", {}))
    if "channels" in m:
        m["channels"] = tuple(m["channels"])
    # Folders written before the field existed record it next to the model config.
    m.setdefault("prediction", info.get("prediction", "v_prediction"))
    cfg = ShapesModelConfig(**m)
    unet = UNet3DConditionModel.from_config(
        json.loads((folder / "unet" / "config.json").read_text())
    )
    if dtype != torch.float32:
        unet = unet.to(dtype)
    unet.load_state_dict(
        _to(load_file(folder / "unet" / "diffusion_pytorch_model.safetensors"), dtype)
    )
    if cfg.frame_positions:
        add_frame_positions(unet)
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    te_cfg = json.loads((folder / "text_encoder" / "config.json").read_text())
    te_cfg = {k: v for k, v in te_cfg.items() if k not in ("architectures", "dtype")}
    text_encoder = CLIPTextModel(CLIPTextConfig(**te_cfg))
    text_encoder.load_state_dict(
        _to(load_file(folder / "text_encoder" / "model.safetensors"), dtype)
    )
    # Weights were already cast while loading (a .to() on the U-Net would only warn).
    return unet, text_encoder.to(dtype), tokenizer, cfg


def _to(sd: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in sd.items()}
