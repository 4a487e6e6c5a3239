"""A weight-free, exact "autoencoder" between RGB frames and pixel-unshuffled latents.

The shapes model (``assets/shapes``) works in pixel space: 32x32 frames pixel-unshuffled 4x4
into 8x8 latents with 48 channels. ``PixelShuffleVAE`` has the ``encode``/``decode``/``config``
surface diffusers' pipelines use from an ``AutoencoderKL``, so the shapes folder loads with
``from_pretrained`` like any text-to-video model (its ``model_index.json`` names this class).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import AutoencoderMixin, DecoderOutput
from diffusers.models.modeling_utils import ModelMixin
from safetensors.torch import save_file

from starvid.errors import StarVidError


class PixelShuffleVAE(ModelMixin, AutoencoderMixin, ConfigMixin):
    """Exact, weight-free "autoencoder" between RGB frames and pixel-unshuffled latents.

    ``decode(z)`` of ``(n, 3*p*p, h, w)`` gives ``DecoderOutput(sample=(n, 3, h*p, w*p))``;
    ``encode`` is the inverse (its ``latent_dist`` has ``sample()`` and ``mode()``).
    ``config.block_out_channels`` has log2(p)+1 entries so that the project's
    ``2 ** (len(block_out_channels) - 1)`` scale factor is p.
    """

    @register_to_config
    def __init__(
        self,
        patch: int = 4,
        latent_channels: int = 48,
        block_out_channels: tuple[int, ...] = (48, 48, 48),
        scaling_factor: float = 1.0,
        sample_size: int = 32,
    ):
        super().__init__()
        if 2 ** (len(block_out_channels) - 1) != patch or latent_channels != 3 * patch * patch:
            raise StarVidError("PixelShuffleVAE config is inconsistent with its patch size")
        # One buffer so the module has a device and dtype (diffusers asks for them).
        self.register_buffer("_anchor", torch.zeros(1), persistent=False)
        # Exact and per-frame anyway: slicing and tiling change nothing, so they are allowed.
        self.use_slicing = False
        self.use_tiling = False

    def encode(self, x: torch.Tensor, return_dict: bool = True):
        """Frames ``(n, 3, H, W)`` in [-1, 1] -> latents."""
        z = F.pixel_unshuffle(x, self.config.patch)
        dist = _Exact(z)
        return _EncoderOutput(dist) if return_dict else (dist,)

    def decode(self, z: torch.Tensor, return_dict: bool = True, generator=None):
        """Latents -> frames ``(n, 3, H, W)``."""
        x = F.pixel_shuffle(z, self.config.patch)
        return DecoderOutput(sample=x) if return_dict else (x,)

    def forward(self, x: torch.Tensor):
        return self.decode(self.encode(x).latent_dist.mode())

    def save_pretrained(self, save_directory, *args, **kwargs):
        """diffusers' ``save_pretrained``, plus the empty weights file it skips for a model
        without weights: ``from_pretrained`` (and so a saved pipeline) needs one."""
        super().save_pretrained(save_directory, *args, **kwargs)
        weights = Path(save_directory) / "diffusion_pytorch_model.safetensors"
        if not weights.exists():
            save_file({}, str(weights), metadata={"format": "pt"})


class _Exact:
    def __init__(self, z: torch.Tensor):
        self.z = z

    def sample(self, generator=None) -> torch.Tensor:
        return self.z

    def mode(self) -> torch.Tensor:
        return self.z


@dataclass
class _EncoderOutput:
    latent_dist: _Exact
