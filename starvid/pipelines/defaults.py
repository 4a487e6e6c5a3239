"""Generation defaults a model was trained for, as a pipeline carries them in its config."""

from __future__ import annotations

from dataclasses import dataclass, fields


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
    # unit step: the shapes model needs a smaller one (docs/results.md).
    step_size: float = 0.3
    # Cross-attention layers the losses read ("low", "mid", "all" or name prefixes). "low" (the
    # coarse layers) suits large models; at 32x32 the shapes model's 4x4 maps cannot tell two
    # neighbouring objects apart, so guidance grew and merged them: it needs its 8x8 layers.
    record_layers: str = "low"
    # Recompute layers in the backward pass of gradient iterations instead of keeping their
    # activations (starvid.checkpointing): less memory, one more partial forward per iteration.
    checkpointing: bool = False

    @classmethod
    def from_dict(cls, data: dict) -> BackboneDefaults:
        """Defaults from a config's plain values; keys this version does not know are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(data).items() if k in known})


def guess_defaults(unet, vae_scale_factor: int, frames: int = 16) -> BackboneDefaults:
    """Defaults for a model that names none: its training resolution, ``frames`` frames."""
    side = int(unet.config.sample_size or 32) * vae_scale_factor
    # an unknown model is most likely a full-size one: save memory unless told otherwise
    return BackboneDefaults(
        height=side, width=side, frames=frames, steps=25, cfg_scale=9.0, fps=8, checkpointing=True
    )
