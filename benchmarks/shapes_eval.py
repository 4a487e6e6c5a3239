"""Shapes-world benchmark: baseline vs StarVid on held-out two-subject captions, scored exactly.

A thin script over ``python -m starvid batch`` and ``evaluate``. Captions come from
``starvid.shapes.world.sample_eval_groups`` (two subjects that differ in colour, shape and
motion, with counts; structures never sampled for training) and go to the batch as a shapes
suite (JSON lines with their facts). For every caption and seed the batch generates a baseline
video and a StarVid-guided video from the same noise, and the shapes scorer of ``evaluate``
(``starvid.shapes.score.score_video``) checks numeracy (count and size), attribute (colour and
shape), motion (share of subjects moving right) and action binding (both subjects move as their
own verbs say). The table gives each rate, the paired difference and its 95 % interval.

Plans: ``--planner world`` (default) lays boxes out where a world video of that caption would
have its objects (an oracle layout: it measures guidance, not planning), handed to the batch as
plan files (``--plans``); ``--planner heuristic`` uses the project's heuristic planner. The
batch parses each caption with ``parse_prompt`` (the exact parse of the caption's truth,
checked by tests/test_shapes.py).

    python benchmarks/shapes_eval.py --quick          # 8 captions x 1 seed, short
    python benchmarks/shapes_eval.py --json           # 100 captions x 3 seeds
    python benchmarks/shapes_eval.py --ablation       # spatial only / syntax only / both; k=0..3
    python benchmarks/shapes_eval.py --single         # 12 single-object captions (baseline skill)
    ... --workers 2 --threads 2                       # 2 processes (accelerate), 1 thread each
    ... --set step_size=0.05 --set guidance_steps=6   # other guidance settings, both arms
    ... --rows a.jsonl; ... --set iterations=2 --rows b.jsonl
    python benchmarks/shapes_eval.py --compare a.jsonl b.jsonl   # paired: settings B - A
    ... --out runs/shapes                             # keep the batch folders (a rerun resumes)

The model was trained with an auxiliary loss that localizes colour and noun attention (see
assets/shapes/training.json): this makes it friendlier to guidance than a large model.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starvid.errors import StarVidError  # noqa: E402
from starvid.evaluation import stats  # noqa: E402
from starvid.shapes.score import CATEGORIES  # noqa: E402
from starvid.shapes.world import (  # noqa: E402
    COLORS,
    MOTION_PHRASES,
    MOTIONS,
    PLURALS,
    SHAPES,
    Group,
    WorldConfig,
    parsed_caption,
    render,
    sample_eval_groups,
)

# What the app and the CLI run on the shapes backbone: its defaults (20 steps, CFG 4, guidance
# in the first 5 steps, 3 updates a step normalized per term, size 0.05, maps of
# the 8x8 down layer), stated here so that a change of defaults shows in this file (a test
# ties them). ``--set key=value`` explores others.
DEFAULT_SETTINGS = dict(
    steps=20,
    guidance_steps=5,
    iterations=3,
    step_size=0.05,
    record_layers="down_blocks.0",
    normalize_grad="per_term",
    cfg_scale=4.0,
    spatial_weight=1.0,
    syntax_weight=0.1,
    adjacent_frames=1,
)
ABLATIONS = {
    "spatial only": dict(syntax_weight=0.0),
    "syntax only": dict(spatial_weight=0.0),
    "both": {},
    **{f"both, k={k}": dict(adjacent_frames=k) for k in range(4)},
}


def parse_settings(pairs: list[str]) -> dict:
    """``["step_size=0.05", ...]`` as validated generation settings (only the keys given)."""
    from starvid.settings import make_settings

    raw = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise StarVidError(f"--set wants KEY=VALUE, got {pair!r}")
        try:
            raw[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            raw[key.strip()] = value
    return make_settings(raw).model_dump(include=set(raw))


def verb_after_caption(groups: list[Group]) -> str:
    """The caption with every verb after all the nouns ("a red circle and a blue square, the
    circle moving left and the square jumping"): a causal text encoder reads each verb after
    both nouns, so the verbs' tokens can mix them (issue 24)."""
    noun_phrases = [g.phrase()[: -len(MOTION_PHRASES[g.motion]) - 1] for g in groups]
    actions = [
        f"the {g.shape if g.count == 1 else PLURALS[g.shape]} {MOTION_PHRASES[g.motion]}"
        for g in groups
    ]
    return f"{' and '.join(noun_phrases)}, {' and '.join(actions)}"


def caption_item(groups: list[Group], verb_after: bool = False):
    """The suite item of a caption (its groups as facts), phrased naturally or verb-after."""
    from starvid.evaluation.suites import item_id, shapes_item

    item = shapes_item(groups)
    if not verb_after:
        return item
    prompt = verb_after_caption(groups)
    return item.model_copy(update={"prompt": prompt, "id": item_id(item.suite, prompt)})


def world_plan(groups, parsed, seed: int, cfg: WorldConfig) -> dict:
    """A plan with the boxes of a world video of these groups (objects in subject order)."""
    sample = render(groups, seed=seed, cfg=cfg)
    if len(parsed.subjects) != len(groups):
        raise StarVidError(f"parse of {sample.caption!r} has {len(parsed.subjects)} subjects")
    objects = []
    for i, obj in enumerate(sample.objects):
        half = obj.size / 2
        tr = obj.trajectory
        boxes = np.concatenate([tr - half, tr + half], axis=1) / cfg.size
        boxes = np.clip(boxes, 0.0, 1.0)
        subj = parsed.subjects[obj.group]
        objects.append(
            {
                "id": f"{subj.noun}-{i + 1}",
                "noun": subj.noun,
                "subject": obj.group,
                "verbs": subj.verb_lemmas,
                "boxes": boxes.round(4).tolist(),
            }
        )
    return {"version": 1, "frames": cfg.frames, "objects": objects, "planner": "world"}


def rate_table(rows: list[dict]) -> dict:
    """Per-arm rates, the paired StarVid - baseline difference with a 95 % interval
    (``starvid.evaluation.stats.rate_table``) and where numeracy fails (``diagnosis``)."""
    return stats.rate_table(rows, CATEGORIES) | {"diagnosis": diagnosis(rows)}


def _mean_of_defined(values: list[float]) -> float:
    """Mean of the values that are not NaN; NaN when none is (one-subject captions have no
    other noun), without NumPy's empty-slice warning."""
    defined = [v for v in values if not np.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


ARMS = ("baseline", "starvid")


def motion_confusion(groups: list[dict]) -> dict:
    """Per motion told, per arm: the share of subjects seen doing each motion, most first."""
    out = {}  # "none": not tracked; "mixed": its objects disagree
    for asked in sorted({g["motion"] for g in groups}):
        mine = [g for g in groups if g["motion"] == asked]
        seen = {arm: collections.Counter(g["seen"][arm] for g in mine) for arm in ARMS}
        out[asked] = {"subjects": len(mine)} | {
            arm: {m: n / len(mine) for m, n in c.most_common()} for arm, c in seen.items()
        }
    return out


def diagnosis(rows: list[dict]) -> dict:
    """Where numeracy and binding fail: the share of subjects drawn with the right count (and
    size), by the count the caption asks for; the share of videos with objects of colours it
    does not name (numeracy needs none); the share of videos where a subject does another
    subject's motion (motion leak, ``VideoScore.motion_leak``); where the verbs' maps sit
    (``verb_map_kl``: mean KL to their own noun's and to the other nouns', rows' ``verb_kl``)."""
    subjects = [g for r in rows for g in r["groups"]]
    by_count: dict[int, dict[str, list[bool]]] = {}
    for g in subjects:
        arms = by_count.setdefault(g["count"], {arm: [] for arm in ARMS})
        for arm in arms:
            arms[arm].append(g[arm])
    optional = {}
    if all("leak" in r for r in rows):  # rows saved before the leak was scored have none
        optional["videos_with_motion_leak"] = {
            arm: float(np.mean([r["leak"][arm] for r in rows])) for arm in ARMS
        }
    if all("seen" in g for g in subjects):  # rows saved before it have none
        optional["motion_seen_by_asked"] = motion_confusion(subjects)
    if all("verb_kl" in r for r in rows):  # rows saved before it have none
        optional["verb_map_kl"] = {
            arm: {
                side: _mean_of_defined([r["verb_kl"][arm][side] for r in rows])
                for side in ("own", "other")
            }
            for arm in ARMS
        }
    return {
        "count_right_by_count": {
            str(n): {arm: float(np.mean(v)) for arm, v in arms.items()}
            | {"subjects": len(arms["baseline"])}
            for n, arms in sorted(by_count.items())
        },
        "videos_with_extra_objects": {
            arm: float(np.mean([r["extra"][arm] for r in rows])) for arm in ARMS
        },
    } | optional


def single_groups() -> list[list[Group]]:
    """One object of every colour x shape, each motion in turn: 12 single-object captions."""
    kinds = [(c, sh) for c in COLORS for sh in SHAPES]
    return [[Group(c, sh, 1, MOTIONS[i % len(MOTIONS)])] for i, (c, sh) in enumerate(kinds)]


def _caption_groups(args, cfg: WorldConfig) -> list[list[Group]]:
    if args.single:
        return single_groups()[: args.n]
    return sample_eval_groups(args.n, seed=args.caption_seed, cfg=cfg)


def _world_config(model: str) -> WorldConfig:
    """The world at the model's trained size and frames (its backbone defaults)."""
    from starvid.shapes.model import read_training_info

    trained = read_training_info(Path(model)).get("model", {})
    return WorldConfig(size=trained.get("size", 32), frames=trained.get("frames", 8))


def _backbone(model: str) -> str:
    """The registry name of the shipped model's folder, else the folder."""
    from starvid.backbones import BACKBONES

    folder = Path(model).resolve()
    return "shapes" if folder == BACKBONES["shapes"].local_path().resolve() else str(folder)


def run_settings(args, overrides: dict | None = None) -> dict:
    """Both arms' settings: the defaults, then the run's overrides, --steps and --set."""
    settings = {**DEFAULT_SETTINGS, **(overrides or {})}
    if args.steps:  # the guidance window follows: the default quarter of the steps
        settings["steps"] = args.steps
        del settings["guidance_steps"]
    if args.plan_kind != "trajectory":  # left out by default: earlier runs' folders resume
        settings["plan_kind"] = args.plan_kind
    settings.update(args.set)
    settings.pop("seed", None)  # the seeds are the batch's: 0 .. --seeds - 1
    return settings


def setting_flags(settings: dict) -> list[str]:
    """Settings as the batch command's flags (``--step-size 0.05``, ``--no-stop-early``)."""
    from starvid.settings import flag_name

    flags = []
    for key, value in settings.items():
        if isinstance(value, bool):
            flags.append(flag_name(key) if value else "--no-" + flag_name(key)[2:])
        elif value is not None:
            flags += [flag_name(key), str(value)]
    return flags


def write_world_plans(
    groups_list, seeds: int, cfg: WorldConfig, folder: Path, verb_after: bool = False
) -> None:
    """Each caption's oracle plan for each seed, as the batch's plan files (ITEM-sSEED.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    for groups in groups_list:
        item = caption_item(groups, verb_after)
        for seed in range(seeds):
            plan = world_plan(groups, parsed_caption(groups), seed % 3, cfg)
            (folder / f"{item.id}-s{seed}.json").write_text(json.dumps(plan), encoding="utf-8")


def _die_with_parent() -> None:
    """Launcher pre-exec: on Linux, end the batch processes when the benchmark process dies.

    A killed parent (not a Ctrl-C, which reaches the whole process group) would otherwise leave
    them generating to the end of their jobs.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def run_batch_command(argv: list[str], workers: int, threads: int) -> None:
    """``python -m starvid batch ARGV``: in this process (``threads`` torch threads), or with
    ``workers`` processes under ``accelerate launch`` (torchrun; ``threads`` each). The
    batch's own output goes to stderr: stdout is the benchmark's."""
    if workers == 1:
        import torch

        from starvid.cli import build_parser

        torch.set_num_threads(threads)
        parsed = build_parser().parse_args(argv)
        with contextlib.redirect_stdout(sys.stderr):
            failed = parsed.func(parsed)
    else:
        with socket.socket() as s:  # a free port for the processes' rendezvous
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        launch = ["--multi_gpu", "--num_processes", str(workers), "--num_machines", "1"]
        launch += ["--mixed_precision", "no", "--dynamo_backend", "no"]
        launch += ["--main_process_port", str(port)]
        cmd = [sys.executable, "-m", "accelerate.commands.launch", *launch, "-m", "starvid", *argv]
        env = os.environ | {"OMP_NUM_THREADS": str(threads)}
        with subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_die_with_parent,
        ) as launched:
            for line in launched.stdout:  # to this process's stderr, whatever it is
                sys.stderr.write(line)
        failed = launched.returncode
    if failed:
        raise StarVidError(f"the batch stopped (exit {failed}); its messages are above")


def run(args, overrides: dict | None = None, label: str = "") -> tuple[list[dict], list]:
    """Generate and score every caption x seed; returns (one row per video, example pairs).

    The captions go to ``python -m starvid batch`` as a shapes suite (with the oracle plans as
    plan files) in a folder named by the settings under ``args.work`` (a rerun with ``--out``
    resumes), and ``evaluate``'s shapes scorer scores both arms. With ``--workers N`` the jobs
    are split across N processes (each ``--threads // N`` torch threads): on a small CPU model,
    processes scale better than threads.
    """
    from starvid.batch import finished_jobs, job_names, read_manifest
    from starvid.evaluation.evaluate import evaluate_batch
    from starvid.evaluation.facts import write_items

    cfg = _world_config(args.model)
    groups_list = _caption_groups(args, cfg)
    settings = run_settings(args, overrides)
    key = [settings, args.planner, _backbone(args.model)] + (["verb-after"] * args.verb_after)
    key = json.dumps(key, sort_keys=True)
    slug = "-".join(re.findall(r"[a-z0-9]+", label.lower())) or "run"
    folder = Path(args.work) / f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    write_items([caption_item(g, args.verb_after) for g in groups_list], folder / "items.jsonl")
    argv = ["batch", str(folder / "items.jsonl"), "--out", str(folder / "batch"), "--baseline"]
    argv += ["--backbone", _backbone(args.model), "--device", args.device]
    argv += ["--seeds", str(args.seeds), *setting_flags(settings)]
    if args.planner == "world":
        write_world_plans(groups_list, args.seeds, cfg, folder / "plans", args.verb_after)
        argv += ["--plans", str(folder / "plans")]
    workers = max(1, min(args.workers, len(groups_list) * args.seeds))
    t0 = time.time()
    run_batch_command(argv, workers, max(1, args.threads // workers))
    rows = evaluate_batch(folder / "batch", "shapes").rows
    names = job_names(read_manifest(folder / "batch"))[: args.grid_rows]
    examples = []
    for job in finished_jobs(folder / "batch", names):
        frames = job.frames()
        examples.append((frames["baseline"], frames["guided"]))
    if not args.json:
        print(f"{label}{len(rows)} videos x 2 in {time.time() - t0:.0f}s", file=sys.stderr)
    return rows, examples


def compare_rows(rows_a: list[dict], rows_b: list[dict]) -> dict:
    """Paired table of two runs' StarVid arms on the same videos: A in the ``baseline`` column,
    B in the ``starvid`` one (so ``difference`` is B - A), matched by caption and seed."""
    by_key = {(r["caption"], r["seed"]): r for r in rows_a}
    keys_b = {(r["caption"], r["seed"]) for r in rows_b}
    if not rows_b or keys_b != set(by_key):
        raise StarVidError(
            f"the two runs scored different videos ({len(keys_b & set(by_key))} shared, "
            f"{len(by_key)} and {len(keys_b)} in all): same --n, --seeds and --caption-seed"
        )
    rows = []
    for b in rows_b:
        a = by_key[(b["caption"], b["seed"])]
        rows.append(
            {
                "caption": b["caption"],
                "seed": b["seed"],
                "baseline": a["starvid"],
                "starvid": b["starvid"],
                "groups": [
                    {"count": ga["count"], "baseline": ga["starvid"], "starvid": gb["starvid"]}
                    for ga, gb in zip(a["groups"], b["groups"], strict=True)
                ],
                "extra": {"baseline": a["extra"]["starvid"], "starvid": b["extra"]["starvid"]},
            }
            | (
                {"leak": {"baseline": a["leak"]["starvid"], "starvid": b["leak"]["starvid"]}}
                if "leak" in a and "leak" in b
                else {}
            )
            | (
                {
                    "verb_kl": {
                        "baseline": a["verb_kl"]["starvid"],
                        "starvid": b["verb_kl"]["starvid"],
                    }
                }
                if "verb_kl" in a and "verb_kl" in b
                else {}
            )
        )
    return rate_table(rows)


def read_rows(path: str) -> list[dict]:
    """Rows written by ``--rows`` (one JSON object a line)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    except (OSError, ValueError) as exc:
        raise StarVidError(f"cannot read rows from {path}: {exc}") from exc


def print_table(title: str, table: dict, arms: tuple[str, str] = ("baseline", "StarVid")) -> None:
    """Rates in percent, the two arms (baseline | StarVid unless named) | difference [95 %]."""
    print(f"\n{title}  (n_videos={table['n_videos']})")
    print(stats.text_table(table, arms))
    diag = table["diagnosis"]
    for n, row in diag["count_right_by_count"].items():
        print(
            f"  subjects asked for {n}: count right {100 * row['baseline']:.1f}% -> "
            f"{100 * row['starvid']:.1f}% ({row['subjects']} subjects)"
        )
    extra = diag["videos_with_extra_objects"]
    print(
        "  videos with objects of colours the caption does not name: "
        f"{100 * extra['baseline']:.1f}% -> {100 * extra['starvid']:.1f}%"
    )
    if "videos_with_motion_leak" in diag:
        leak = diag["videos_with_motion_leak"]
        print(
            "  videos where a subject does another subject's motion: "
            f"{100 * leak['baseline']:.1f}% -> {100 * leak['starvid']:.1f}%"
        )
    for asked, row in diag.get("motion_seen_by_asked", {}).items():
        seen = [", ".join(f"{m} {100 * v:.0f}%" for m, v in row[arm].items()) for arm in ARMS]
        print(f"  subjects told {asked} ({row['subjects']}), seen: {seen[0]} -> {seen[1]}")
    if "verb_map_kl" in diag:
        kl = diag["verb_map_kl"]
        print(
            "  verb maps, KL to their own noun's | to the other nouns' (end of the guidance "
            f"window): {kl['baseline']['own']:.2f} | {kl['baseline']['other']:.2f} -> "
            f"{kl['starvid']['own']:.2f} | {kl['starvid']['other']:.2f}"
        )


def save_grid(path: Path, examples: list) -> None:
    """Rows: examples; left half baseline frames, right half StarVid frames."""
    import cv2

    rows = []
    for base, guided in examples:
        sep = np.full((base.shape[1], 4, 3), 255, np.uint8)
        rows.append(np.concatenate([*base, sep, *guided], axis=1))
    grid = np.concatenate(rows, axis=0)
    grid = cv2.resize(grid, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), grid[..., ::-1])


def main(argv: list[str] | None = None) -> int:
    """Command line; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100, help="held-out captions")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per caption")
    ap.add_argument("--quick", action="store_true", help="8 captions, 1 seed, 12 steps")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--ablation", action="store_true")
    ap.add_argument("--planner", choices=("world", "heuristic"), default="world")
    ap.add_argument(
        "--plan-kind",
        choices=("trajectory", "layout"),
        default="trajectory",
        help="boxes follow the planned paths, or stay where they start (motion left to the verbs)",
    )
    ap.add_argument(
        "--verb-after",
        action="store_true",
        help="phrase the captions with every verb after both nouns ('a red circle and a blue "
        "square, the circle moving left and the square jumping')",
    )
    ap.add_argument("--steps", type=int, default=0, help="denoising steps (0: 20)")
    ap.add_argument("--model", default=str(Path(__file__).resolve().parents[1] / "assets/shapes"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch threads in all")
    ap.add_argument("--workers", type=int, default=1, help="processes sharing the jobs")
    ap.add_argument(
        "--single",
        action="store_true",
        help="single-object captions (every colour x shape): has the model learned its world?",
    )
    ap.add_argument("--caption-seed", type=int, default=0)
    ap.add_argument("--grid", default="out/shapes_eval.png", help="example grid PNG ('' to skip)")
    ap.add_argument("--grid-rows", type=int, default=8)
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a generation setting for both arms, e.g. --set step_size=0.05 (repeatable)",
    )
    ap.add_argument("--rows", default="", help="also write each video's scores (JSON lines)")
    ap.add_argument(
        "--out",
        default="",
        metavar="DIR",
        help="keep the batch folders here, one per settings (a rerun resumes); default: a "
        "temporary folder, removed at the end",
    )
    ap.add_argument(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        help="no generation: the paired difference of two --rows files' StarVid arms (B - A), "
        "e.g. two guidance settings on the same captions and seeds",
    )
    args = ap.parse_args(argv)
    try:
        args.set = parse_settings(args.set)
        if args.grid and Path(args.grid).suffix.lower() not in (".png", ".jpg", ".jpeg"):
            # checked before the run: the grid is written at its end
            raise StarVidError(f"--grid wants a .png or .jpg path ('' to skip), got {args.grid!r}")
        if args.compare:
            table = compare_rows(*(read_rows(path) for path in args.compare))
    except StarVidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.compare:
        if args.json:
            print(json.dumps(table))
        else:
            print_table(f"StarVid: B - A ({' vs '.join(args.compare)})", table, ("A", "B"))
        return 0
    if args.single:
        args.n = min(args.n, len(single_groups()))
    if args.quick:
        args.n, args.seeds, args.steps = min(args.n, 8), 1, args.steps or 12
    with contextlib.ExitStack() as stack:
        args.work = args.out or stack.enter_context(tempfile.TemporaryDirectory(prefix="shapes-"))
        try:
            if args.ablation:
                tables = {}
                for name, over in ABLATIONS.items():
                    tables[name] = rate_table(run(args, over, label=f"{name}: ")[0])
                if args.json:
                    print(json.dumps(tables))
                else:
                    for name, t in tables.items():
                        print_table(name, t)
                return 0
            rows, examples = run(args)
        except StarVidError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    table = rate_table(rows)
    if args.rows:
        Path(args.rows).parent.mkdir(parents=True, exist_ok=True)
        Path(args.rows).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    if args.grid and examples:
        save_grid(Path(args.grid), examples)
    if args.json:
        print(
            json.dumps(
                {
                    "baseline": table["baseline"],
                    "starvid": table["starvid"],
                    "difference": table["difference"],
                    "n_videos": table["n_videos"],
                    "diagnosis": table["diagnosis"],
                }
            )
        )
    else:
        print_table("shapes world: baseline vs StarVid", table)
        if args.grid and examples:
            print(f"example grid (baseline | StarVid): {args.grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
