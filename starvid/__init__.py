"""StarVid Studio: training-free semantic alignment for U-Net text-to-video diffusion.

Reference open implementation of StarVid (arXiv 2409.15259): parse a prompt, plan a box layout
and its trajectories, and guide the cross-attention of a video U-Net with that plan.
"""

from starvid.errors import StarVidError

# The backbone the app and the CLI use when no other is chosen: the shipped shapes-world model.
DEFAULT_BACKBONE = "shapes"

__all__ = ["DEFAULT_BACKBONE", "StarVidError", "trace"]


def __getattr__(name: str):
    # trace() needs torch: imported on first use, so `python -m starvid parse` stays light
    if name == "trace":
        from starvid.heatmaps import trace

        return trace
    raise AttributeError(f"module 'starvid' has no attribute {name!r}")


__version__ = "0.1.0"
