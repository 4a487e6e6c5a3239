"""Training throughput of the shapes model: videos per CPU-second, recipe against recipe.

    python benchmarks/train_throughput.py [--steps 8] [--rounds 2] [--threads 1]
        [--channels 32 48] [--world full|single] [--compile] [--json]

Both recipes train the same model from scratch (the U-Net of `--channels`, frame positions) on
the same world for the same steps, in one process, alternating (A B A B ...) so that a busy
machine weighs on both alike. "today" is the recipe before issue 23 (fp32, fused SDPA in the
unrecorded attention layers, diffusers' dropout 0.1); "new" is the trainer's default (bf16
autocast, plain matmul-softmax attention, no dropout). Time is CPU time of this process
(`time.process_time`, all threads), charged per phase of a step: drawing the batch, forward,
losses, backward, optimizer, EMA. Prints each recipe's CPU-ms per video and phase, videos per
CPU-second and the ratio to today's. `--compile` adds the new recipe with the U-Net's forward
compiled (`torch.compile`; the compilation is in the warm-up, not in the figures).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from starvid.shapes.train import PhaseClock, Trainer, build_parser  # noqa: E402

RECIPES = {
    "today": ["--precision", "fp32", "--attention", "sdpa", "--dropout", "0.1"],
    "new": ["--precision", "bf16", "--attention", "plain", "--dropout", "0"],
}
COMPILED = ["--precision", "bf16", "--attention", "plain", "--dropout", "0", "--compile"]
WORLDS = {
    "full": [],  # the world's own mix: 1-3 kinds, 1-4 objects each
    "single": ["--kind-weights", "1,0,0"],  # one subject a video: placement is cheap
}


def recipes(args) -> dict[str, list[str]]:
    """The recipes measured: today's and the new one, and with `--compile` the new one compiled."""
    return RECIPES | ({"compiled": COMPILED} if args.compile else {})


def make_trainer(recipe: str, args, folder: Path) -> Trainer:
    """A from-scratch trainer for `recipe`, writing (tokenizer, state) under `folder`."""
    argv = recipes(args)[recipe] + WORLDS[args.world]
    argv += ["--from-scratch", "--frame-positions", "--temporal-weight", "4"]
    argv += ["--channels", *map(str, args.channels), "--batch", str(args.batch)]
    argv += ["--out", str(folder / recipe), "--state", str(folder / f"{recipe}.safetensors")]
    return Trainer(build_parser().parse_args(argv))


def measure(args) -> dict:
    """Phase CPU-seconds and videos of each recipe over `args.rounds` alternating rounds."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    clocks = {name: PhaseClock() for name in recipes(args)}
    videos = dict.fromkeys(clocks, 0)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        trainers = {name: make_trainer(name, args, Path(tmp)) for name in clocks}
        for tr in trainers.values():
            # Each trainer stays in training mode throughout: a compiled forward compiles once.
            stack.enter_context(tr.training_mode())
            for _ in range(2):  # warm-up: first-call allocations, kernel choices, compilation
                tr.train_step(1e-4)
        for _ in range(args.rounds):
            for name, tr in trainers.items():
                clocks[name].mark("other")  # not charged: the time between rounds
                for _ in range(args.steps):
                    tr.train_step(1e-4, clocks[name])
                    videos[name] += args.batch
    out = {}
    for name, clock in clocks.items():
        phases = {k: v for k, v in clock.seconds.items() if k != "other"}
        total = sum(phases.values())
        out[name] = {
            "cpu_ms_per_video": {k: round(1000 * v / videos[name], 2) for k, v in phases.items()},
            "cpu_ms_per_video_total": round(1000 * total / videos[name], 2),
            "videos_per_cpu_second": round(videos[name] / total, 2),
        }
    for name in clocks:
        if name != "today":
            ratio = out[name]["videos_per_cpu_second"] / out["today"]["videos_per_cpu_second"]
            out[f"ratio_{name}_over_today"] = round(ratio, 2)
    out["settings"] = vars(args)
    return out


def main() -> None:
    """Parse options, measure, print."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=8, help="steps a recipe runs in each round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--channels", type=int, nargs="+", default=[32, 48])
    ap.add_argument("--world", choices=sorted(WORLDS), default="full")
    ap.add_argument(
        "--compile", action="store_true", help="also the new recipe with torch.compile (slow start)"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = measure(args)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    for name in recipes(args):
        r = res[name]
        phases = ", ".join(f"{k} {v}" for k, v in r["cpu_ms_per_video"].items())
        print(
            f"{name:6s} {r['videos_per_cpu_second']:6.2f} videos per CPU-second "
            f"({r['cpu_ms_per_video_total']} CPU-ms a video: {phases})"
        )
    for key, value in res.items():
        if key.startswith("ratio_"):
            print(f"{key.removeprefix('ratio_').replace('_over_', ' / ')}: x{value}")


if __name__ == "__main__":
    main()
