"""Sweep the guidance weights on the shapes model: do the controls do what their labels say?

For every (spatial weight, syntax weight) pair, the same held-out two-subject captions and seeds
are generated with oracle world layouts (``shapes_eval.world_plan``: it measures guidance, not
planning) and the backbone's default settings otherwise; one same-seed baseline per video is the
reference. Per setting it prints:

- ``inbox``: the in-box attention share at the end of the guidance window (report
  ``inbox_share``), mean over objects and frames: should rise with the spatial weight until it
  saturates;
- ``verb-own KL``: KL(verb map || its own noun's map) at the end of the window, mean over verbs
  and frames: should fall as the syntax weight rises (``verb-other KL`` for the other nouns);
- the shapes scorer's five categories (numeracy, attribute, motion, action binding, all).

    python benchmarks/guidance_sweep.py [--n 20] [--seeds 1] [--caption-seed 2]
        [--spatial 0 0.25 0.5 1 2 4] [--syntax 0 0.1 0.5 1 2] [--set temperature=5] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from starvid.errors import StarVidError  # noqa: E402
from starvid.shapes.score import CATEGORIES, score_video  # noqa: E402
from starvid.shapes.world import (  # noqa: E402
    WorldConfig,
    parsed_caption,
    sample_eval_groups,
)

SPATIAL = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0]
SYNTAX = [0.0, 0.1, 0.5, 1.0, 2.0]


def _shapes_eval():
    spec = importlib.util.spec_from_file_location("shapes_eval", ROOT / "benchmarks/shapes_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p || q) per frame of maps ``(F, h, w)``, each normalized over its pixels."""
    p = p / p.sum(axis=(1, 2), keepdims=True).clip(1e-12)
    q = q / q.sum(axis=(1, 2), keepdims=True).clip(1e-12)
    return (p * (np.log(p + 1e-8) - np.log(q + 1e-8))).sum(axis=(1, 2))


def verb_distances(parsed, maps: dict[str, np.ndarray]) -> tuple[float, float]:
    """(mean KL of each verb's map to its own noun's, mean KL to the other nouns') at the end of
    the guidance window."""
    nouns = [maps[s.head.text] for s in parsed.subjects]
    own, other = [], []
    for i, s in enumerate(parsed.subjects):
        for v in s.verbs:
            own.append(_kl(maps[v.text], nouns[i]).mean())
            other += [_kl(maps[v.text], n).mean() for j, n in enumerate(nouns) if j != i]
    return float(np.mean(own)), float(np.mean(other)) if other else float("nan")


def run_sweep(args) -> list[dict]:
    """Rows: one per setting (and the baseline), averaged over captions x seeds."""
    import torch

    from starvid.backbones import load_backbone
    from starvid.pipeline import generate
    from starvid.plan import validate_plan
    from starvid.settings import make_settings

    torch.set_num_threads(args.threads)
    bench = _shapes_eval()
    bb = load_backbone(args.model, device="cpu", cache=False)
    cfg = WorldConfig(size=bb.defaults.height, frames=bb.defaults.frames)
    groups_list = sample_eval_groups(args.n, seed=args.caption_seed, cfg=cfg)
    base_settings = bench.parse_settings(args.set)
    grid = [(sw, yw) for sw in args.spatial for yw in args.syntax]
    acc: dict[str, dict[str, list[float]]] = {}

    def add(key: str, result, groups, parsed) -> None:
        row = acc.setdefault(key, {})
        score = score_video(result.frames, groups, cfg)
        for c in CATEGORIES:
            row.setdefault(c, []).append(float(getattr(score, c)))
        row.setdefault("inbox", []).append(float(np.nanmean(result.inbox_share)))
        own, other = verb_distances(parsed, result.maps_window)
        row.setdefault("verb_own_kl", []).append(own)
        row.setdefault("verb_other_kl", []).append(other)

    t0 = time.time()
    for gi, groups in enumerate(groups_list):
        parsed = parsed_caption(groups)
        for seed in range(args.seeds):
            plan = validate_plan(bench.world_plan(groups, parsed, seed % 3, cfg))
            s0 = make_settings({**base_settings, "seed": seed}).resolve(bb)
            add("baseline", generate(bb, parsed, plan, s0, guided=False), groups, parsed)
            for sw, yw in grid:
                s = s0.model_copy(update={"spatial_weight": sw, "syntax_weight": yw})
                add(f"{sw:g}/{yw:g}", generate(bb, parsed, plan, s), groups, parsed)
        done = (gi + 1) * args.seeds
        print(f"{done} videos a setting, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    rows = []
    for key, values in acc.items():
        sw, _, yw = key.partition("/")
        rows.append(
            {
                "setting": key,
                "spatial_weight": None if key == "baseline" else float(sw),
                "syntax_weight": None if key == "baseline" else float(yw),
                "videos": len(values["all"]),
                **{k: round(float(np.mean(v)), 4) for k, v in values.items()},
            }
        )
    return rows


def print_table(rows: list[dict]) -> None:
    """The sweep as a fixed-width table."""
    head = ["spatial/syntax", "inbox", "verb-own KL", "verb-other KL", *CATEGORIES]
    print("  ".join(f"{h:>13}" for h in head))
    for r in rows:
        cells = [r["setting"], r["inbox"], r["verb_own_kl"], r["verb_other_kl"]]
        cells += [100 * r[c] for c in CATEGORIES]
        print(
            "  ".join(
                f"{c:>13}" if isinstance(c, str) else f"{c:>13.3f}" if i < 4 else f"{c:>12.1f}%"
                for i, c in enumerate(cells)
            )
        )


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "assets" / "shapes"))
    ap.add_argument("--n", type=int, default=20, help="held-out captions")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--caption-seed", type=int, default=2)
    ap.add_argument("--spatial", type=float, nargs="+", default=SPATIAL)
    ap.add_argument("--syntax", type=float, nargs="+", default=SYNTAX)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        rows = run_sweep(args)
    except StarVidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows))
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
