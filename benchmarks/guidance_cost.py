"""What StarVid guidance costs: guided vs baseline wall time and peak memory, as ratios.

Same prompt, plan, seed and settings for every mode:

- ``baseline``: the plain denoising loop (fused SDPA everywhere, no recording at all);
- ``heatmaps``: the same loop recording per-word heat maps (no guidance);
- ``guided``: StarVid guidance with the ``default`` settings, ``heavy`` (guidance in the first
  25% of the steps, 5 iterations a step) and ``reference`` (default, but every gradient iteration
  runs the whole U-Net instead of stopping after the last recorded layer: what that saves),
  and ``checkpointing`` / ``no-checkpointing`` (default with activation checkpointing flipped
  from the backbone's default: its memory saving and its time).

``--modes guided`` runs only the baseline, the default and the flipped checkpointing: enough for
a full-size model on a CPU, at a few frames (``--frames 1``, ``--frames 2``: the working memory
grows linearly with the frames, so two points extrapolate to 24), cold (``--repeats 0``).

Each mode runs once to warm up, then ``--repeats`` times; the fastest wall time is reported (the
run least disturbed by other processes), and the process CPU time next to it (``cpu_time_ratio``:
robust on a shared machine when ``--threads 1``). Peak memory
is measured as in ``starvid.memory.PeakMemory`` (CUDA: ``max_memory_allocated``; CPU: the
kernel's resident-set high-water mark). On the CPU every mode runs in a fresh process
(``--isolate``, default there): freed memory stays in the process, so a mode measured after
another would inherit its peak. ``*_working_mb`` is the peak minus what was in use at the start
(weights, libraries): the memory the run itself needed.

Usage:
  python benchmarks/guidance_cost.py                 # tiny model, CPU
  python benchmarks/guidance_cost.py --json
  python benchmarks/guidance_cost.py --backbone zeroscope --random-weights   # on a GPU
  python benchmarks/guidance_cost.py --backbone zeroscope --estimate      # memory, any machine
  python benchmarks/guidance_cost.py --backbone zeroscope --random-weights --dtype bfloat16 \
      --frames 2 --steps 2 --repeats 0 --modes guided --threads 2              # on a CPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = "two cats walking to the left and a dog jumping on the right"
PARSED = ROOT / "benchmarks" / "data" / "cost_prompt_parse.json"  # PROMPT's parse, for GPU boxes


def settings_for(name: str, steps: int) -> dict:
    """Guidance settings of a named configuration (the rest: GenerationSettings defaults)."""
    if name == "default":
        return {}
    if name == "heavy":  # the default window (the first quarter of the steps), 5 iterations
        from starvid.settings import default_guidance_steps

        return {"guidance_steps": default_guidance_steps(steps), "iterations": 5}
    if name == "reference":  # default, with the whole U-Net run in every gradient iteration
        return {"stop_early": False}
    if name in ("checkpointing", "no-checkpointing"):  # default, memory saving on / off
        return {"checkpointing": name == "checkpointing"}
    raise SystemExit(f"unknown setting {name}")


def base_settings(args, bb):
    """The run's size and seed from the command line, the rest the backbone's defaults."""
    from starvid.settings import make_settings

    size = dict(seed=args.seed, steps=args.steps, frames=args.frames)
    return make_settings(size | dict(height=args.height, width=args.width)).resolve(bb)


def _load(args):
    import torch

    from starvid.backbones import load_backbone

    if args.threads:  # the run's own thread choice (starvid/threads.py) reads this
        os.environ["STARVID_THREADS"] = str(args.threads)
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype) if args.dtype else None
    return load_backbone(
        args.backbone, device=args.device, dtype=dtype, random_weights=args.random_weights
    )


def load_parse(args):
    """The prompt's parse: spaCy's, or ``--parsed``'s saved one (machines without spaCy)."""
    from starvid.parsing import ParsedPrompt, parse_prompt

    if not args.parsed:
        return parse_prompt(args.prompt)
    return ParsedPrompt.from_details(json.loads(Path(args.parsed).read_text(encoding="utf-8")))


def measure_mode(args, mode: str) -> dict:
    """Warm up once, then time ``args.repeats`` runs of one mode in this process."""
    from starvid.pipeline import generate
    from starvid.planning import heuristic_plan

    bb = _load(args)
    parsed = load_parse(args)
    base = base_settings(args, bb)
    plan = heuristic_plan(parsed, frames=base.frames, seed=args.seed)
    kind, _, setting = mode.partition(":")
    s = base.model_copy(update=settings_for(setting, base.steps)) if kind == "guided" else base
    kw = {"guided": kind == "guided", "record": kind != "baseline"}
    runs, cpu = [], []
    for _ in range(args.repeats + 1):  # the first run warms up caches, kernels, the allocator
        c0 = time.process_time()
        runs.append(generate(bb, parsed, plan, s, **kw))
        cpu.append(time.process_time() - c0)
    if args.repeats:  # --repeats 0: the one cold run is the figure (full size on a CPU)
        runs, cpu = runs[1:], cpu[1:]
    return {
        "mode": mode,
        "s": min(r.timing_s for r in runs),
        "cpu_s": min(cpu),
        "peak_mb": max(r.peak_memory_mb for r in runs),
        "working_mb": max(r.working_memory_mb for r in runs),
        "settings": s.model_dump(),
        "backbone": bb.name,
        "device": str(bb.device),
        "inbox_share": float(runs[-1].inbox_share.mean()) if kw["record"] else None,
    }


def _child_args(args, mode: str) -> list[str]:
    out = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--backbone",
        args.backbone,
        "--prompt",
        args.prompt,
        "--seed",
        str(args.seed),
        "--repeats",
        str(args.repeats),
    ]
    for flag in ("steps", "frames", "height", "width", "device", "threads", "dtype", "parsed"):
        v = getattr(args, flag)
        if v is not None:
            out += [f"--{flag}", str(v)]
    if args.random_weights:
        out.append("--random-weights")
    return out


def run_modes(args, modes: list[str]) -> dict[str, dict]:
    if not args.isolate:
        return {m: measure_mode(args, m) for m in modes}
    results = {}
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    for m in modes:
        proc = subprocess.run(_child_args(args, m), capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"{m} failed:\n{proc.stderr[-2000:]}")
        results[m] = json.loads(proc.stdout.strip().splitlines()[-1])
    return results


def ratios(base: dict, other: dict, name: str, mode: str = "guided") -> dict:
    """The JSON object of one measured setting (``guided_*``: the measured run, whatever mode)."""
    prefix = "guided"
    return {
        "setting": name,
        "mode": mode,
        "time_ratio": round(other["s"] / base["s"], 3),
        "cpu_time_ratio": round(other["cpu_s"] / base["cpu_s"], 3),
        "memory_ratio": round(other["peak_mb"] / base["peak_mb"], 3),
        "working_memory_ratio": round(other["working_mb"] / max(base["working_mb"], 1e-6), 3),
        "baseline_s": round(base["s"], 3),
        f"{prefix}_s": round(other["s"], 3),
        "baseline_peak_mb": round(base["peak_mb"], 1),
        f"{prefix}_peak_mb": round(other["peak_mb"], 1),
        "baseline_working_mb": round(base["working_mb"], 1),
        f"{prefix}_working_mb": round(other["working_mb"], 1),
        "settings": other["settings"],
        "backbone": other["backbone"],
        "device": other["device"],
    }


def estimate(args) -> list[dict]:
    """Activation memory of one gradient iteration, with and without checkpointing, sized on the
    meta device (no weights, no compute): full-size models in seconds on any machine."""
    import torch

    from starvid.backbones import load_backbone
    from starvid.pipeline import iteration_activation_bytes
    from starvid.planning import heuristic_plan

    dtype = getattr(torch, args.dtype or "bfloat16")
    bb = load_backbone(args.backbone, device="meta", dtype=dtype, random_weights=True)
    weights = sum(p.numel() * p.element_size() for p in bb.unet.parameters())
    base = base_settings(args, bb)
    parsed = load_parse(args)
    plan = heuristic_plan(parsed, frames=base.frames, seed=args.seed)
    rows = []
    for ck in (False, True):
        kept = iteration_activation_bytes(
            bb, parsed, plan, base.model_copy(update={"checkpointing": ck})
        )
        rows.append(
            {
                "backbone": bb.name,
                "dtype": str(dtype).removeprefix("torch."),
                "frames": base.frames,
                "height": base.height,
                "width": base.width,
                "checkpointing": ck,
                "unet_weights_gib": round(weights / 2**30, 3),
                "activations_gib": round(kept / 2**30, 3),
                "default": ck == base.checkpointing,
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="tiny")
    ap.add_argument("--random-weights", action="store_true", help="full size from config")
    ap.add_argument("--device", default=None)
    ap.add_argument("--prompt", default=PROMPT)
    ap.add_argument(
        "--parsed",
        metavar="JSON",
        help="a saved parse (ParsedPrompt.details()) instead of spaCy's: its prompt is used "
        f"(the default prompt's: {PARSED.relative_to(ROOT)})",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--height", type=int, default=None)
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument(
        "--dtype",
        choices=["float32", "float16", "bfloat16"],
        help="default: fp16 on CUDA, else fp32",
    )
    ap.add_argument(
        "--repeats", type=int, default=2, help="measured runs after one warm-up (0: one cold run)"
    )
    ap.add_argument(
        "--modes",
        choices=["all", "guided"],
        default="all",
        help="guided: only the baseline, the default and checkpointing flipped (full size, CPU)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    ap.add_argument(
        "--isolate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one fresh process per mode (default: on CPU)",
    )
    ap.add_argument(
        "--estimate",
        action="store_true",
        help="size a gradient iteration's activations on the meta device (no timing)",
    )
    ap.add_argument("--json", action="store_true", help="one JSON object per setting")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure_mode(args, args.child)))
        return
    if args.estimate:
        for row in estimate(args):
            if args.json:
                print(json.dumps(row))
                continue
            print(
                f"{row['backbone']} {row['width']}x{row['height']}x{row['frames']} {row['dtype']}"
                f", checkpointing {'on ' if row['checkpointing'] else 'off'}"
                f"{' (default)' if row['default'] else '          '}: a gradient iteration keeps"
                f" {row['activations_gib']:.2f} GiB of activations (U-Net weights"
                f" {row['unet_weights_gib']:.2f} GiB)"
            )
        return
    if args.isolate is None:
        import torch

        cuda = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
        args.isolate = not cuda
    from starvid.backbones import BACKBONES

    spec = BACKBONES.get(args.backbone)
    flipped = "no-checkpointing" if spec and spec.defaults.checkpointing else "checkpointing"
    modes = ["baseline", "guided:default", f"guided:{flipped}"]
    if args.modes == "all":
        modes += ["guided:heavy", "guided:reference", "heatmaps"]
    res = run_modes(args, modes)
    rows = [
        ratios(res["baseline"], res[m], m.partition(":")[2] or m, mode=m.partition(":")[0])
        for m in modes[1:]
    ]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    b = res["baseline"]
    print(
        f"{b['backbone']} on {b['device']}: baseline {b['s']:.2f} s, peak {b['peak_mb']:.0f} MB "
        f"(working {b['working_mb']:.0f} MB), steps {b['settings']['steps']}, "
        f"frames {b['settings']['frames']}"
    )
    for row in rows:
        s = row["settings"]
        what = (
            "heat maps only"
            if row["setting"] == "heatmaps"
            else f"{row['setting']}: {s['guidance_steps']} guided steps x {s['iterations']} it"
        )
        print(
            f"  {what:<37} time x{row['time_ratio']:.2f}  peak memory x{row['memory_ratio']:.2f}"
            f" ({row['guided_peak_mb']:.0f} MB)  working memory x{row['working_memory_ratio']:.2f}"
            f" ({row['guided_working_mb']:.0f} MB)"
        )


if __name__ == "__main__":
    main()
