"""The attention debugger from Python, offline, on the shipped shapes model (a minute on a CPU).

A plain diffusers ``TextToVideoSDPipeline`` (no StarVid guidance) is wrapped in
``starvid.trace``, DAAM-style; every token of the prompt is recorded at every cross-attention
layer and step, then drawn and saved as PNG and GIF. Any diffusers U-Net video pipeline works
the same way (ZeroScope, ModelScope, AnimateDiff: ``trace(pipe, [], prompt, cfg=True, ...)``).

    python examples/attention_debugger.py [OUT_FOLDER]
"""

import sys
from pathlib import Path

import numpy as np
import torch
from diffusers import TextToVideoSDPipeline

from starvid import attention_views as views
from starvid import trace
from starvid.backbones import load_backbone

out = Path(sys.argv[1] if len(sys.argv) > 1 else "attention-debugger")
out.mkdir(parents=True, exist_ok=True)
shapes = load_backbone("shapes", device="cpu")
pipe = TextToVideoSDPipeline(**shapes.components)  # diffusers' own pipeline, same weights
prompt = "two red circles moving left and a blue square jumping"

with trace(pipe, ["circles", "square"], prompt, cfg=True, record_all=True) as maps:
    video = pipe(
        prompt,
        num_frames=8,
        height=32,  # the shapes model's size
        width=32,
        num_inference_steps=20,
        guidance_scale=4.0,  # the shapes model's CFG scale
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).frames[0]
frames = (np.asarray(video) * 255).round().astype(np.uint8)  # (F, H, W, 3)
rec = maps.recording
print("tokens:", rec.tokens)
print("layers:", len(rec.layer_names), "steps:", rec.n_steps)
print("'and' at frame 3, step 10:", rec.word_map("and", step=10)[3].shape)

figures = {
    "overlay": views.overlay_view(rec, "circles", 3, frames, opacity=0.6),
    "steps": views.steps_view(rec, "square"),
    "words": views.words_view(rec, ["red", "circles", "blue", "square", "<end>"], 3, frames),
    "layers": views.layers_view(rec, "circles", 3),
    "prompt": views.prompt_view(rec, {}, by="entropy"),
    "settle": views.settle_view(rec, ["circles", "square", "moving", "jumping"]),
}
for name, view in figures.items():
    print("saved", view.save_png(out / f"{name}.png"))
print("saved", views.animation_view(rec, "circles", frames).save_gif(out / "circles.gif"))
figures["overlay"].figure()  # a plotly figure of any view, e.g. .show() in a notebook
