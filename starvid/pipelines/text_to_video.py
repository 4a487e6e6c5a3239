"""``StarVidPipeline``: StarVid on diffusers' ``TextToVideoSDPipeline`` (UNet3D models)."""

from __future__ import annotations

from diffusers import TextToVideoSDPipeline, UNet3DConditionModel

# diffusers loads a component class from a module only once it is imported: the shapes
# model's folder names its VAE here.
import starvid.pixel_vae  # noqa: F401
from starvid.pipelines.base import StarVidMixin, quiet_logger

MAX_FRAME_POSITIONS = 32


def add_frame_positions(unet: UNet3DConditionModel, max_frames: int = MAX_FRAME_POSITIONS) -> int:
    """Give every temporal attention block of `unet` sinusoidal frame positions; returns how many
    blocks got them (blocks that have positions already are left as they are).

    These are diffusers' own ``positional_embeddings="sinusoidal"`` of a transformer block: fixed
    (no weights) and kept out of the state dict, so the saved weights stay those of a plain
    ``UNet3DConditionModel``. A model trained with them says so in its ``model_index.json``
    (``frame_positions``: the most frames) and ``StarVidPipeline`` adds them back when it loads.
    """
    from diffusers.models.attention import BasicTransformerBlock
    from diffusers.models.embeddings import SinusoidalPositionalEmbedding
    from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel

    added = 0
    for module in unet.modules():
        if not isinstance(module, TransformerTemporalModel):
            continue
        for block in module.transformer_blocks:
            if isinstance(block, BasicTransformerBlock) and block.pos_embed is None:
                pos = SinusoidalPositionalEmbedding(block.norm1.normalized_shape[0], max_frames)
                pe = pos.pe
                del pos.pe
                pos.register_buffer("pe", pe, persistent=False)
                block.pos_embed = pos.to(device=unet.device, dtype=unet.dtype)
                added += 1
    return added


class StarVidPipeline(StarVidMixin, TextToVideoSDPipeline):
    """Text-to-video with StarVid's attention guidance, for ``UNet3DConditionModel`` models
    (ZeroScope, ModelScope, the shipped shapes model).

    Loads like any diffusers pipeline, from a hub id or a folder, and offloads, slices and swaps
    schedulers as ``TextToVideoSDPipeline`` does::

        pipe = StarVidPipeline.from_pretrained("cerspense/zeroscope_v2_576w")
        pipe.enable_model_cpu_offload()
        out = pipe("two cats walking to the left and a dog jumping on the right")
        out.frames, out.maps["cats"], out.inbox_share

    Args:
        vae, text_encoder, tokenizer, unet, scheduler: as ``TextToVideoSDPipeline``'s.
        starvid_defaults: the generation defaults the model was trained for (a
            ``BackboneDefaults`` as a dict); None: the registry's or guessed.
        vocabulary: the words of a closed-vocabulary model (prompts with others get a warning).
        frame_positions: the U-Net was trained with sinusoidal frame positions in its temporal
            attention for up to this many frames (``add_frame_positions``); None: without.
    """

    def __init__(
        self,
        vae,
        text_encoder,
        tokenizer,
        unet,
        scheduler,
        starvid_defaults: dict | None = None,
        vocabulary: list[str] | None = None,
        frame_positions: int | None = None,
    ):
        # diffusers marks TextToVideoSDPipeline deprecated and logs it for every subclass made;
        # the class works and is the one UNet3D pipeline diffusers has: say nothing here.
        with quiet_logger("diffusers.pipelines.pipeline_utils"):
            super().__init__(vae, text_encoder, tokenizer, unet, scheduler)
        self._register_starvid(starvid_defaults, vocabulary)
        if frame_positions:
            add_frame_positions(self.unet, frame_positions)
        self.register_to_config(frame_positions=frame_positions)

    def _scheduler_step(self, noise, t, latents):
        # TextToVideoSDPipeline steps on (B*F, C, h, w): the same layout for every scheduler
        b, c, f, h, w = latents.shape
        flat = lambda x: x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)  # noqa: E731
        out = self.scheduler.step(flat(noise), t, flat(latents)).prev_sample
        return out.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)
