"""``python -m starvid``: a thin command line over the same functions the UI calls.

Bad input prints one line on stderr and exits with code 2; nothing else is printed then.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from starvid import DEFAULT_BACKBONE
from starvid.errors import StarVidError
from starvid.settings import add_setting_flags

EXIT_BAD_INPUT = 2


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit code 2."""

    def error(self, message: str) -> None:  # noqa: D102 - argparse API
        raise StarVidError(f"{self.prog}: {message}")


def _printable(text: str) -> str:
    """``text`` safe for a terminal: control characters shown as spaces."""
    from starvid.parsing.cleaning import blank_control_characters

    return blank_control_characters(text)[0]


def _cmd_parse_batch(path: str) -> int:
    """One JSON line per input line, in order, spaCy loaded once and fed in batches.

    A line that is not a prompt (blank, too long, no noun...) gets an object with an "error"
    field and a line on stderr, so output lines stay aligned with input lines.
    """
    from itertools import tee

    from starvid.inputs import prompt_lines
    from starvid.parsing import parse_stream

    lines, feed = tee(enumerate(prompt_lines(path), start=1))
    results = parse_stream(line for _, line in feed if isinstance(line, str))
    count = 0
    for number, line in lines:
        count += 1
        result = next(results) if isinstance(line, str) else line
        if isinstance(result, StarVidError):
            text = _printable(line) if isinstance(line, str) else ""
            data = {"prompt": text, "subjects": [], "scene": [], "error": str(result)}
            print(f"error: {path}, prompt {number}: {result}", file=sys.stderr)
        else:
            data = result.to_dict()
            for w in result.warnings:
                print(f"warning: {path}, prompt {number}: {w}", file=sys.stderr)
        print(json.dumps(data, ensure_ascii=False), flush=True)
    if count == 0:
        raise StarVidError(f"{path} has no prompts (one prompt a line)")
    return 0


def _cmd_parse(args: argparse.Namespace) -> int:
    from starvid.parsing import parse_prompt

    if args.batch:
        if args.prompt:
            raise StarVidError("give either a PROMPT or --batch FILE, not both")
        return _cmd_parse_batch(args.batch)
    if args.prompt is None:
        raise StarVidError("give a PROMPT or --batch FILE")
    parsed = parse_prompt(args.prompt)
    for w in parsed.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(parsed.to_dict(), ensure_ascii=False))
    else:
        for s in parsed.subjects:
            verbs = ", ".join(s.verb_lemmas) or "-"
            print(f"{s.count} × {s.noun} ({s.text}): {verbs}")
        print(f"scene: {', '.join(parsed.scene) or '-'}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from starvid.parsing import parse_prompt
    from starvid.planning import make_plan

    plan = make_plan(
        parse_prompt(args.prompt),
        frames=args.frames,
        seed=args.seed,
        planner=args.planner,
        model=args.model,
    )
    if args.json:
        print(plan.to_json())
    else:
        print(f"planner: {plan.planner}, {plan.frames} frames")
        for obj in plan.objects:
            first, last = obj.boxes[0], obj.boxes[-1]
            fmt = ", ".join
            print(
                f"{obj.id} ({'/'.join(obj.verbs) or 'still'}): "
                f"[{fmt(f'{v:.2f}' for v in first)}] -> [{fmt(f'{v:.2f}' for v in last)}]"
            )
        for w in plan.warnings:
            print(f"warning: {w}")
    return 0


def _cmd_backbones(args: argparse.Namespace) -> int:
    from starvid.backbones import describe_backbones, load_backbone

    if args.load:
        bb = load_backbone(args.load, device=args.device, random_weights=args.random_weights)
        info = bb.info() | {"defaults": bb.defaults.__dict__}
        print(json.dumps(info, indent=None if args.json else 2))
        return 0
    rows = describe_backbones()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for r in rows:
        d = r["defaults"]
        where = "here" if r["available_offline"] else "download"
        print(
            f"{r['name']:<11} {d['width']}x{d['height']}, {d['frames']} frames, "
            f"{d['steps']} steps, CFG {d['cfg_scale']:g}  [{where}]  {r['source']}"
        )
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from starvid.parsing import parse_prompt
    from starvid.plan import read_plan_file
    from starvid.report import RunReport
    from starvid.run import GenerationRequest, check_output_folder, run_generation
    from starvid.settings import settings_from_flags

    report = RunReport.read(args.from_report) if args.from_report else None
    prompt = args.prompt or (report.prompt if report else None)
    if not prompt:
        raise StarVidError("generate needs a prompt (or --from-report REPORT.json)")
    backbone_name = args.backbone or (report.backbone if report else DEFAULT_BACKBONE)
    settings = settings_from_flags(args, report.settings if report else None)
    plan = read_plan_file(args.plan) if args.plan else (report.plan if report else None)
    baseline = args.baseline or (report is not None and report.has_baseline)
    if Path(args.out).suffix.lower() in (".mp4", ".gif", ".json", ".npz"):
        raise StarVidError(
            f"--out names the run's folder (guided.mp4, report.json, ... go inside), not a "
            f"file: {args.out}"
        )
    folder = check_output_folder(args.out)  # before any work: a bad path fails in a second
    request = GenerationRequest(
        parse_prompt(prompt), backbone_name, settings, plan, baseline, args.planner, gif=args.gif
    )
    result = run_generation(request, folder)
    files = result.files
    rep = result.report
    times = ", ".join(f"{k} {v:.1f} s" for k, v in rep.timing_s.items())
    print(f"{rep.frames} frames, {rep.settings.steps} steps ({times})")
    for obj, means in rep.share_means().items():
        line = " / ".join(f"{k} {v:.3f}" for k, v in means.items())
        print(f"{obj}: in-box attention share {line}")
    for w in rep.warnings:
        print(f"warning: {w}")
    for path in files.values():
        print(f"wrote {path}")
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    from starvid.batch import BatchConfig, read_batch_items, run_batch
    from starvid.run import check_output_folder
    from starvid.settings import settings_from_flags

    if args.seeds < 1:
        raise StarVidError(f"--seeds must be at least 1, got {args.seeds}")
    settings = settings_from_flags(args)
    out = check_output_folder(args.out)
    items = read_batch_items(args.prompts)
    config = BatchConfig(
        backbone=args.backbone,
        settings=settings,
        baseline=args.baseline,
        planner=args.planner,
        plans=Path(args.plans) if args.plans else None,
        device=args.device,
    )
    seeds = range(settings.seed, settings.seed + args.seeds)
    summary = run_batch(items, seeds, out, config, source=args.prompts)
    if not summary.is_main_process:
        return 1 if summary.failed else 0
    for w in summary.warnings:
        print(f"warning: {w}", file=sys.stderr)
    for job in summary.failed:
        print(f"error: {job['folder']}: {job['error']}", file=sys.stderr)
    counts = ", ".join(f"{summary.count(s)} {s}" for s in ("generated", "skipped", "failed"))
    processes = f" by {summary.processes} processes" if summary.processes > 1 else ""
    print(f"{len(summary.jobs)} jobs{processes}: {counts}")
    print(f"wrote {out / 'manifest.json'}")
    return 1 if summary.failed else 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from starvid.evaluation import stats
    from starvid.evaluation.evaluate import evaluate_batch, write_evaluation

    if args.detector and args.scorer != "detector":
        raise StarVidError("--detector goes with --scorer detector")
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        raise StarVidError(f"--plot writes a PNG: name it .png, not {args.plot}")
    evaluation = evaluate_batch(args.folder, args.scorer, args.detector, args.device)
    files = write_evaluation(args.folder, evaluation)
    if args.plot:
        title = f"{Path(args.folder).name}: {evaluation.scorer} scorer"
        stats.plot_rates(evaluation.tables, args.plot, title=title)
    if args.json:
        print(json.dumps(evaluation.to_dict()))
        return 0
    print(evaluation.markdown())
    if evaluation.unfinished:
        name, reason = evaluation.unfinished[0]
        total = len(evaluation.unfinished) + len(evaluation.rows)
        print(
            f"warning: {len(evaluation.unfinished)} of {total} jobs not scored (first: {name}, "
            f"{reason}); evaluation.md lists them",
            file=sys.stderr,
        )
    for path in [*files.values(), *([args.plot] if args.plot else [])]:
        print(f"wrote {path}")
    return 0


def _cmd_suite(args: argparse.Namespace) -> int:
    from starvid.evaluation.facts import write_items
    from starvid.evaluation.suites import make_suite

    items = make_suite(args.name, args.n, args.seed)
    if args.out:
        if Path(args.out).is_dir():
            raise StarVidError(f"--out names a file (JSON lines), not a folder: {args.out}")
        try:
            write_items(items, args.out)
        except OSError as exc:
            raise StarVidError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
        print(f"wrote {len(items)} items to {args.out}", file=sys.stderr)
        return 0
    for item in items:
        print(item.model_dump_json(exclude_defaults=True), flush=True)
    return 0


def _suite_name(name: str) -> str:
    """A suite's name, checked when the suite command runs: the suites import the shapes world
    (OpenCV, the evaluation extra), which the core CLI must not need."""
    from starvid.evaluation.suites import SUITES

    if name not in SUITES:
        raise argparse.ArgumentTypeError(
            f"unknown suite {name!r}; choose one of {', '.join(SUITES)}"
        )
    return name


def _add_batch_parsers(sub) -> None:
    p = sub.add_parser("batch", help="generate many prompts x seeds into one folder (resumable)")
    p.add_argument(
        "prompts",
        metavar="PROMPTS",
        help="a text file (one prompt a line) or a suite's JSON lines (python -m starvid suite)",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="the batch folder: one folder per prompt and seed, and manifest.json; a rerun "
        "skips finished jobs and redoes broken ones",
    )
    p.add_argument(
        "--backbone",
        default=DEFAULT_BACKBONE,
        help=f"registry name, hub id or folder (default {DEFAULT_BACKBONE})",
    )
    p.add_argument(
        "--baseline",
        action="store_true",
        help="also run unguided with the same seed (evaluate needs it)",
    )
    p.add_argument(
        "--seeds", type=int, default=1, help="seeds per prompt: --seed, --seed + 1, ... (default 1)"
    )
    _planner_flag(p, "planner when no plan files are given (default heuristic)")
    p.add_argument(
        "--plans",
        metavar="FOLDER",
        help="plan files instead of a planner: FOLDER/ITEM-sSEED.json, else FOLDER/ITEM.json",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: accelerate's)")
    add_setting_flags(p)
    p.set_defaults(func=_cmd_batch)

    p = sub.add_parser("evaluate", help="score a batch's videos, baseline against StarVid")
    p.add_argument("folder", metavar="DIR", help="a folder written by python -m starvid batch")
    p.add_argument(
        "--scorer",
        choices=("shapes", "detector"),
        required=True,
        help="shapes: the shapes world's exact scorer; detector: an open-vocabulary detector "
        "on suite items",
    )
    p.add_argument(
        "--detector",
        metavar="ID",
        default=None,
        help="owlvit (default), owlv2, grounding-dino, a hub id or a folder",
    )
    p.add_argument("--device", default="cpu", help="the detector's device (default cpu)")
    p.add_argument("--json", action="store_true", help="print the tables as one JSON object")
    p.add_argument("--plot", metavar="PNG", help="also draw the rates as a bar chart")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("suite", help="write a prompt suite with its facts (JSON lines)")
    p.add_argument(
        "name",
        type=_suite_name,
        metavar="NAME",
        help="lvd, compbench, shapes or one of their parts",
    )
    p.add_argument("--n", type=int, default=100, help="prompts (default 100)")
    p.add_argument("--seed", type=int, default=0, help="held-out fold, 0 to 4 (default 0)")
    p.add_argument("--out", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(func=_cmd_suite)


PLANNER_CHOICES = ("auto", "llm", "heuristic")  # starvid.planning.PLANNERS, without importing it


def _planner_flag(p: argparse.ArgumentParser, help: str, default: str = "heuristic") -> None:
    p.add_argument("--planner", choices=PLANNER_CHOICES, default=default, help=help)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per step of the method."""
    parser = _ArgumentParser(
        prog="python -m starvid",
        description="StarVid Studio: parse a prompt, plan its layout, generate a guided video.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    p = sub.add_parser("parse", help="parse a prompt into subjects, counts and verbs")
    p.add_argument("prompt", nargs="?", help="the prompt")
    p.add_argument("--json", action="store_true", help="print the contract's JSON object")
    p.add_argument(
        "--batch",
        metavar="FILE",
        help="one prompt a line ('-': standard input); prints one JSON a line, in order",
    )
    p.set_defaults(func=_cmd_parse)

    p = sub.add_parser("plan", help="lay out boxes and trajectories for a prompt")
    p.add_argument("prompt")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    _planner_flag(p, "auto: the LLM planner when it is installed, else the heuristic one", "auto")
    p.add_argument("--model", default=None, help="GGUF path or REPO:FILE for --planner llm")
    p.add_argument("--json", action="store_true", help="print the Plan as JSON")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("backbones", help="list the text-to-video backbones, or load one")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--load", metavar="NAME", help="load NAME (registry, hub id or folder)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, meta (default: auto)")
    p.add_argument("--random-weights", action="store_true", help="full size, random init")
    p.set_defaults(func=_cmd_backbones)

    p = sub.add_parser("generate", help="generate a video with StarVid guidance")
    p.add_argument("prompt", nargs="?", help="the prompt (or --from-report)")
    p.add_argument(
        "--backbone",
        default=None,
        help=f"registry name, hub id or folder (default {DEFAULT_BACKBONE})",
    )
    p.add_argument(
        "--from-report",
        metavar="JSON",
        help="run again what a report describes (prompt, backbone, plan, settings, baseline); "
        "other flags override it",
    )
    p.add_argument(
        "--out",
        default="out",
        metavar="FOLDER",
        help="the run's folder: guided.mp4, baseline.mp4, side_by_side.mp4, plan.json, "
        "report.json, maps.npz (default ./out)",
    )
    p.add_argument("--plan", metavar="JSON", help="plan file (default: plan with --planner)")
    _planner_flag(p, "planner when no plan is given (default heuristic)")
    p.add_argument(
        "--baseline",
        action="store_true",
        help="also run unguided with the same seed (baseline.mp4, side_by_side.mp4)",
    )
    p.add_argument("--gif", action="store_true", help="also write GIFs")
    add_setting_flags(p)
    p.set_defaults(func=_cmd_generate)

    _add_batch_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except StarVidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``... | head``): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
