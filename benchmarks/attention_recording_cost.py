"""What the attention debugger's full recording costs a default run.

A default Studio run (the shapes model's defaults: guided run, then the same-seed baseline)
with ``record_attention`` at ``needed`` (the default: what the losses read), ``full`` (every
prompt token at every layer and step) and ``full_heads`` (each head too). The modes alternate,
each ``--repeats`` times after one warm-up; the fastest wall time and the process CPU time of
each are printed with their ratio to ``needed``, and the size of the recorded arrays.

Usage:
  python benchmarks/attention_recording_cost.py [--backbone shapes] [--repeats 5] [--threads 1]
  python benchmarks/attention_recording_cost.py --backbone zeroscope --random-weights \
      --device cuda --dtype bfloat16 --repeats 2          # full size, on a GPU box
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from starvid.backbones import load_backbone
from starvid.parsing import parse_prompt

PROMPT = "two red circles moving left and a blue square jumping"
MODES = ("needed", "full", "full_heads")


def one_run(pipe, parsed, mode: str, **settings) -> tuple[float, float, int]:
    """(wall s, CPU s, recorded bytes) of a guided run and its baseline."""
    t0, c0 = time.perf_counter(), time.process_time()
    guided = pipe(parsed, seed=0, record_attention=mode, **settings)
    base = pipe(parsed, seed=0, record_attention=mode, guided=False, **settings)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    size = 0
    for out in (guided, base):
        if out.attention is not None:
            size += sum(a.nbytes for a in out.attention.to_arrays("x").values())
    return wall, cpu, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="shapes")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None, help="float32 (default), bfloat16, float16")
    ap.add_argument("--random-weights", action="store_true", help="full size from config")
    ap.add_argument("--steps", type=int, default=None, help="default: the backbone's")
    ap.add_argument("--frames", type=int, default=None, help="default: the backbone's")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["STARVID_THREADS"] = str(args.threads)  # the pipelines' own thread choice
    dtype = getattr(torch, args.dtype) if args.dtype else None
    pipe = load_backbone(
        args.backbone, device=args.device, dtype=dtype, random_weights=args.random_weights
    )
    parsed = parse_prompt(PROMPT)
    settings = {k: v for k, v in (("steps", args.steps), ("frames", args.frames)) if v}
    for mode in MODES:  # warm-up
        one_run(pipe, parsed, mode, **settings)
    times = {m: [] for m in MODES}
    for _ in range(args.repeats):
        for mode in MODES:
            times[mode].append(one_run(pipe, parsed, mode, **settings))
    base_wall = min(t[0] for t in times["needed"])
    base_cpu = min(t[1] for t in times["needed"])
    for mode in MODES:
        wall, cpu = min(t[0] for t in times[mode]), min(t[1] for t in times[mode])
        row = {
            "mode": mode,
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "wall_ratio": round(wall / base_wall, 3),
            "cpu_ratio": round(cpu / base_cpu, 3),
            "median_wall_s": round(float(np.median([t[0] for t in times[mode]])), 3),
            "recorded_mb": round(times[mode][0][2] / 2**20, 2),
            "backbone": args.backbone,
            "threads": args.threads,
            "repeats": args.repeats,
        }
        print(json.dumps(row) if args.json else row)


if __name__ == "__main__":
    main()
