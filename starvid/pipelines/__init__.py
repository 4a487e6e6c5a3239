"""StarVid as diffusers pipelines: ``StarVidPipeline`` (UNet3D text-to-video models) and
``StarVidAnimateDiffPipeline`` (AnimateDiff), sharing one StarVid call (``base``)."""

from starvid.pipelines.animatediff import StarVidAnimateDiffPipeline
from starvid.pipelines.base import RUN_LOCK, StarVidMixin
from starvid.pipelines.defaults import BackboneDefaults
from starvid.pipelines.output import (
    Cancelled,
    ProgressFn,
    StarVidPipelineOutput,
    StepProgress,
    VideoResult,
)
from starvid.pipelines.text_to_video import StarVidPipeline

__all__ = [
    "RUN_LOCK",
    "BackboneDefaults",
    "Cancelled",
    "ProgressFn",
    "StarVidAnimateDiffPipeline",
    "StarVidMixin",
    "StarVidPipeline",
    "StarVidPipelineOutput",
    "StepProgress",
    "VideoResult",
]
