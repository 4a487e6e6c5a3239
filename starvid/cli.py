"""``python -m starvid``: a thin command line over the same functions the UI calls.

Bad input prints one line on stderr and exits with code 2; nothing else is printed then.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from starvid import DEFAULT_BACKBONE
from starvid.errors import StarVidError

EXIT_BAD_INPUT = 2


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit code 2."""

    def error(self, message: str) -> None:  # noqa: D102 - argparse API
        raise StarVidError(f"{self.prog}: {message}")


def _read_prompt_file(path: str) -> list[str]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise StarVidError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StarVidError(f"{path} is not UTF-8 text (byte {exc.start})") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def _cmd_parse(args: argparse.Namespace) -> int:
    from starvid.parsing import parse_prompt

    if args.batch:
        if args.prompt:
            raise StarVidError("give either a PROMPT or --batch FILE, not both")
        prompts = _read_prompt_file(args.batch)
        if not prompts:
            raise StarVidError(f"{args.batch} has no prompts (one prompt a line)")
        # One output line per prompt line, in order: a bad line gets an "error" field (and a
        # line on stderr) so the lines stay aligned with the input.
        for number, prompt in enumerate(prompts, start=1):
            try:
                data = parse_prompt(prompt).to_dict()
            except StarVidError as exc:
                data = {"prompt": prompt, "subjects": [], "scene": [], "error": str(exc)}
                print(f"error: {args.batch}, prompt {number}: {exc}", file=sys.stderr)
            print(json.dumps(data, ensure_ascii=False), flush=True)
        return 0
    if args.prompt is None:
        raise StarVidError("give a PROMPT or --batch FILE")
    parsed = parse_prompt(args.prompt)
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


def _sibling(out, tag: str, suffix: str | None = None):
    """out.mp4 -> out.<tag>.mp4 (or another suffix)."""
    out = Path(out)
    return out.with_name(f"{out.stem}.{tag}{suffix or out.suffix}")


def _read_report(path: str) -> dict:
    """A run report written by ``generate --report`` or the app (its prompt, plan, settings)."""
    try:
        report = json.loads(Path(path).read_bytes())
    except OSError as exc:
        raise StarVidError(f"cannot read report {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise StarVidError(f"report {path} is not JSON: {exc}") from exc
    keys = ("prompt", "backbone", "plan", "settings")
    if not isinstance(report, dict) or not all(k in report for k in keys):
        raise StarVidError(f"{path} is not a run report (it needs {', '.join(keys)})")
    return report


def _cmd_generate(args: argparse.Namespace) -> int:
    from starvid import export
    from starvid.pipeline import make_settings, run_generation
    from starvid.plan import load_plan, read_plan_file

    prompt, backbone, plan, baseline = args.prompt, args.backbone, None, args.baseline
    earlier = None  # the settings of the report to run again
    if args.from_report:
        report = _read_report(args.from_report)
        prompt = prompt or report["prompt"]
        backbone = backbone or report["backbone"]
        plan = load_plan(report["plan"]) if not args.plan else None
        earlier = report["settings"]
        baseline = baseline or "baseline" in report.get("timing_s", {})
    if not prompt:
        raise StarVidError("generate needs a prompt (or --from-report REPORT.json)")
    if args.plan:
        plan = read_plan_file(args.plan)
    settings = make_settings(
        earlier,
        seed=args.seed,
        frames=args.frames,
        steps=args.steps,
        height=args.height,
        width=args.width,
        cfg_scale=args.cfg_scale,
        spatial_weight=args.spatial_weight,
        syntax_weight=args.syntax_weight,
        guidance_steps=args.guidance_steps,
        iterations=args.iterations,
        adjacent_frames=args.adjacent_frames,
        step_size=args.step_size,
        distance=args.distance,
        record_layers=args.record_layers,
        spatial_words=args.spatial_words,
        checkpointing=args.checkpointing,
    )
    out = Path(args.out)
    if out.suffix.lower() != ".mp4":
        raise StarVidError(f"--out must end in .mp4: {out}")
    backbone = backbone or DEFAULT_BACKBONE
    result = run_generation(prompt, plan, backbone, settings, baseline=baseline)
    fps = result.report.get("fps", 8)
    written = [export.write_mp4(result.guided.frames, out, fps=fps)]
    if args.gif:
        written.append(export.write_gif(result.guided.frames, out.with_suffix(".gif"), fps=fps))
    if result.baseline is not None:
        base = result.baseline.frames
        written.append(export.write_mp4(base, _sibling(out, "baseline"), fps=fps))
        both = export.side_by_side(base, result.guided.frames)
        written.append(export.write_mp4(both, _sibling(out, "side_by_side"), fps=fps))
        if args.gif:
            written.append(export.write_gif(base, _sibling(out, "baseline", ".gif"), fps=fps))
    if args.maps:
        written.append(export.save_maps(result.guided.maps, args.maps))
        if result.baseline is not None:
            written.append(export.save_maps(result.baseline.maps, _sibling(args.maps, "baseline")))
    if args.report:
        written.append(export.write_report(result.report, args.report))
    rep = result.report
    times = ", ".join(f"{k} {v:.1f} s" for k, v in rep["timing_s"].items())
    print(f"{rep['frames']} frames, {rep['settings']['steps']} steps ({times})")
    for obj in rep["objects"]:
        share = obj["inbox_share"]
        line = " / ".join(f"{k} {sum(v) / len(v):.3f}" for k, v in share.items())
        print(f"{obj['id']}: in-box attention share {line}")
    for w in rep["warnings"]:
        print(f"warning: {w}")
    for path in written:
        print(f"wrote {path}")
    return 0


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
    p.add_argument("--batch", metavar="FILE", help="one prompt a line; prints one JSON a line")
    p.set_defaults(func=_cmd_parse)

    p = sub.add_parser("plan", help="lay out boxes and trajectories for a prompt")
    p.add_argument("prompt")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--planner", choices=("auto", "llm", "heuristic"), default="auto")
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
    p.add_argument("--out", default="out.mp4", help="MP4 path (default out.mp4)")
    p.add_argument("--report", metavar="JSON", help="write the run report here")
    p.add_argument("--plan", metavar="JSON", help="plan file (default: heuristic plan)")
    p.add_argument(
        "--baseline",
        action="store_true",
        help="also run unguided with the same seed (OUT.baseline.mp4, side by side)",
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--cfg-scale", type=float, default=None)
    p.add_argument("--spatial-weight", type=float, default=None)
    p.add_argument("--syntax-weight", type=float, default=None)
    p.add_argument("--guidance-steps", type=int, default=None, help="guide the first N steps")
    p.add_argument("--iterations", type=int, default=None, help="gradient iterations a step")
    p.add_argument("--adjacent-frames", type=int, default=None, help="contrastive window k")
    p.add_argument("--step-size", type=float, default=None)
    p.add_argument("--distance", choices=("kl", "cosine"), default=None)
    p.add_argument("--record-layers", default=None, help="low, mid, all or name prefixes")
    p.add_argument(
        "--spatial-words",
        choices=("noun", "phrase"),
        default=None,
        help="boxes pull the head noun's attention (default) or the noun's and its adjectives'",
    )
    p.add_argument(
        "--checkpointing",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="recompute U-Net layers in guidance's backward pass: less memory, more time "
        "(default: the backbone's)",
    )
    p.add_argument("--maps", metavar="NPZ", help="save per-word attention maps (npz)")
    p.add_argument("--gif", action="store_true", help="also write GIFs")
    p.set_defaults(func=_cmd_generate)

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
