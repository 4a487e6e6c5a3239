"""The pipelines' diffusers features on a GPU: model offloading and VAE slicing keep the video.

On the tiny backbone in fp16 on CUDA: a guided run as loaded, then the same pipeline's parts with
``enable_model_cpu_offload()`` and ``vae.enable_slicing()``; prints the largest pixel difference
and the peak GPU memory of each run. Needs no spaCy (the prompt's parse is saved in
benchmarks/data). Run by scripts/gpu_checks.sh.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from starvid.backbones import load_backbone
from starvid.parsing import ParsedPrompt
from starvid.pipelines import StarVidPipeline
from starvid.planning.heuristic import heuristic_plan

ROOT = Path(__file__).resolve().parents[1]


def peak_run(pipe, parsed, plan) -> tuple[np.ndarray, float]:
    torch.cuda.reset_peak_memory_stats()
    out = pipe(parsed, plan, num_inference_steps=10)
    return out.frames, torch.cuda.max_memory_allocated() / 2**20


def main() -> None:
    details = json.loads((ROOT / "benchmarks/data/cost_prompt_parse.json").read_text())
    parsed = ParsedPrompt.from_details(details)
    bb = load_backbone("tiny", device="cuda")
    plan = heuristic_plan(parsed, frames=bb.defaults.frames, seed=0)
    plain, plain_mb = peak_run(bb, parsed, plan)
    parts = (bb.vae, bb.text_encoder, bb.tokenizer, bb.unet, bb.scheduler)
    pipe = StarVidPipeline(*parts, starvid_defaults=asdict(bb.defaults))
    pipe.enable_model_cpu_offload()
    pipe.vae.enable_slicing()
    offloaded, offloaded_mb = peak_run(pipe, parsed, plan)
    diff = int(np.abs(plain.astype(int) - offloaded).max())
    print(
        json.dumps(
            {
                "check": "offload+slicing",
                "max_pixel_difference": diff,
                "peak_mb": {"loaded": round(plain_mb, 1), "offloaded": round(offloaded_mb, 1)},
                "unet_after_run": str(pipe.unet.device),
            }
        )
    )


if __name__ == "__main__":
    main()
