"""Does each subject's motion follow its own verb? The swap test on the shapes model (issue 24).

For held-out two-subject captions whose subjects move in two different ways (neither "still"),
the model draws the caption and the same caption with the two motions swapped ("a red circle
moving left and a blue square jumping" / "a red circle jumping and a blue square moving left"),
unguided, from the same noise. Each subject is then one of:

- ``follows``: it does its own motion in both videos (the motion words reach their subjects);
- ``one``: its own motion in one video only;
- ``fixed``: the same motion in both, whatever its verb says (the seed or the caption as a
  whole chose it);
- ``neither``: it changes, but to its own motion in neither.

A model whose subjects mostly follow their verbs, and sometimes take the other's, is the one a
loss on the verbs' attention can help; where the motions do not follow the words at all, there
is nothing for the syntax loss to route.

    python benchmarks/motion_swap.py --model assets/shapes --n 30 [--seeds 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starvid.errors import StarVidError  # noqa: E402
from starvid.shapes.world import Group, caption_of, sample_eval_groups  # noqa: E402

OUTCOMES = ("follows", "one", "fixed", "neither")


def swap_outcome(own: tuple[str, str], seen: tuple[set[str], set[str]]) -> str:
    """One subject's outcome from its own motion in (caption, swapped caption) and the motions
    its objects showed in each video."""
    right = [s == {m} for m, s in zip(own, seen, strict=True)]
    if all(right):
        return "follows"
    if any(right):
        return "one"
    return "fixed" if seen[0] == seen[1] else "neither"


def swap_captions(n: int, caption_seed: int) -> list[list[Group]]:
    """The first ``n`` held-out two-subject captions with two different motions, none still."""
    out = []
    for groups in sample_eval_groups(max(200, 8 * n), seed=caption_seed):
        motions = {g.motion for g in groups}
        if len(groups) == 2 and len(motions) == 2 and "still" not in motions:
            out.append(groups)
    if len(out) < n:
        raise StarVidError(f"only {len(out)} captions qualify; ask for fewer")
    return out[:n]


def run(args) -> dict:
    """Generate every caption and its swap at every seed; the outcome shares and the rows."""
    import torch

    from starvid.pipelines import StarVidPipeline
    from starvid.shapes.score import score_video

    torch.set_num_threads(args.threads)
    pipe = StarVidPipeline.from_pretrained(args.model)
    tally: Counter = Counter()
    rows = []
    for groups in swap_captions(args.n, args.caption_seed):
        a, b = groups
        swapped = [replace(a, motion=b.motion), replace(b, motion=a.motion)]
        for seed in range(args.seeds):
            seen = []
            for version in (groups, swapped):
                frames = pipe(caption_of(version), guided=False, record=False, seed=seed).frames
                seen.append([set(g.motions_seen) for g in score_video(frames, version).groups])
            outcomes = [
                swap_outcome((groups[i].motion, swapped[i].motion), (seen[0][i], seen[1][i]))
                for i in range(2)
            ]
            tally.update(outcomes)
            rows.append({"caption": caption_of(groups), "seed": seed, "outcomes": outcomes})
    total = sum(tally.values())
    return {
        "model": str(args.model),
        "subjects": total,
        "shares": {k: tally[k] / total for k in OUTCOMES},
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    """Command line; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(Path(__file__).resolve().parents[1] / "assets/shapes"))
    ap.add_argument("--n", type=int, default=30, help="held-out captions")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--caption-seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON object (with the rows)")
    args = ap.parse_args(argv)
    try:
        if args.n < 1 or args.seeds < 1:
            raise StarVidError("--n and --seeds must be at least 1")
        result = run(args)
    except StarVidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"swap test: {result['subjects']} subjects ({args.n} captions x {args.seeds} seeds)")
    for k in OUTCOMES:
        print(f"  {k:8s} {100 * result['shares'][k]:5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
