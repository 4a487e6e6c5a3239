"""``StarVidAnimateDiffPipeline``: StarVid on diffusers' ``AnimateDiffPipeline``.

AnimateDiff is a Stable Diffusion 1.5 checkpoint with a motion adapter: diffusers builds a
``UNetMotionModel`` whose spatial transformer blocks are SD's (``attentions.*``, with the text
cross-attention ``attn2``) and whose ``motion_modules.*`` attend over frames only (temporal
self-attention, no text). The recorders read the spatial cross-attention, as for the UNet3D
models (``starvid.attention.cross_attention_layers``); the loop is the shared StarVid call.
"""

from __future__ import annotations

from starvid.pipelines.base import StarVidMixin, quiet_logger

# Importing AnimateDiffPipeline registers its IP-adapter image processors, and transformers warns
# on every start that they would like torchvision. StarVid never uses them: the warning only
# buries the command line's own messages, so it is silenced for this import alone.
with quiet_logger("transformers"):
    from diffusers import AnimateDiffPipeline


class StarVidAnimateDiffPipeline(StarVidMixin, AnimateDiffPipeline):
    """AnimateDiff with StarVid's attention guidance.

    Loads as ``AnimateDiffPipeline`` does: an SD 1.5 checkpoint and a motion adapter::

        adapter = MotionAdapter.from_pretrained("guoyww/animatediff-motion-adapter-v1-5-2")
        pipe = StarVidAnimateDiffPipeline.from_pretrained(
            "stable-diffusion-v1-5/stable-diffusion-v1-5", motion_adapter=adapter
        )
        out = pipe("two cats walking to the left and a dog jumping on the right")

    Args:
        vae, text_encoder, tokenizer, unet, motion_adapter, scheduler, feature_extractor,
            image_encoder: as ``AnimateDiffPipeline``'s.
        starvid_defaults: the generation defaults (a ``BackboneDefaults`` as a dict).
        vocabulary: the words of a closed-vocabulary model; None for open vocabularies.
    """

    def __init__(
        self,
        vae,
        text_encoder,
        tokenizer,
        unet,
        motion_adapter,
        scheduler,
        feature_extractor=None,
        image_encoder=None,
        starvid_defaults: dict | None = None,
        vocabulary: list[str] | None = None,
    ):
        super().__init__(
            vae,
            text_encoder,
            tokenizer,
            unet,
            motion_adapter,
            scheduler,
            feature_extractor=feature_extractor,
            image_encoder=image_encoder,
        )
        self._register_starvid(starvid_defaults, vocabulary)

    def embeds_per_frame(self, embeds, frames: int):
        # UNetMotionModel runs its spatial blocks on (batch*frames) rows and, unlike UNet3D,
        # does not repeat the text per frame: AnimateDiffPipeline repeats it, and so do we
        return embeds.repeat_interleave(frames, dim=0)
