"""Score a batch folder (``python -m starvid batch``): both arms of every finished job, tabulated.

Each job's exact frames (``frames.npz``) are scored in both arms, guided ("starvid") and
baseline, giving one row per video in the form ``stats.rate_table`` takes:

- ``shapes``: ``starvid.shapes.score.score_video`` against the caption's groups (a suite item's
  facts, or a plain prompt read with ``groups_of_caption``); the row is the shapes benchmark's
  (``caption``, ``seed``, per-arm categories, each group's count check, extra objects).
- ``detector``: ``starvid.evaluation.detector.score_video`` with one detector loaded once; suite
  items only (the facts say what to look for), each category's benchmark score.

``evaluate_batch`` returns the rows and the per-task tables; ``write_evaluation`` writes
``evaluation.md`` (the markdown table) and ``evaluation.jsonl`` (the rows) into the folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from starvid import export
from starvid.batch import FinishedJob, finished_jobs, job_names, read_manifest
from starvid.errors import StarVidError
from starvid.evaluation import stats

if TYPE_CHECKING:  # the detector module imports torch and transformers: only when scoring
    from starvid.evaluation.detector import Detector

SCORERS = ("shapes", "detector")
ARM_OF = {"guided": "starvid", "baseline": "baseline"}  # frames.npz arm -> stats arm


@dataclass
class Evaluation:
    """Rows (one per video, both arms), per-task tables, and the jobs that could not be scored."""

    scorer: str
    rows: list[dict]
    tables: dict[str, dict]
    unfinished: list[tuple[str, str]] = field(default_factory=list)
    detector: str | None = None

    def markdown(self) -> str:
        """The per-task table in markdown (``stats.markdown_table``)."""
        return stats.markdown_table(self.tables)

    def to_dict(self) -> dict:
        """Plain JSON: scorer, detector, tables and unfinished jobs (the rows are separate)."""
        return {
            "scorer": self.scorer,
            "detector": self.detector,
            "n_videos": len(self.rows),
            "tables": self.tables,
            "unfinished": [{"folder": f, "reason": r} for f, r in self.unfinished],
        }


def _both_arms(job: FinishedJob) -> dict:
    frames = job.frames()
    if "baseline" not in frames:
        raise StarVidError(
            f"{job.folder.name} has no baseline video: evaluate compares both arms, so run the "
            "batch with --baseline"
        )
    return {ARM_OF[arm]: video for arm, video in frames.items()}


def shapes_row(job: FinishedJob) -> dict:
    """One video's shapes-world scores in both arms (the shapes benchmark's row)."""
    from starvid.evaluation.suites import shapes_groups
    from starvid.shapes.score import CATEGORIES, score_video, seen_motion
    from starvid.shapes.world import groups_of_caption

    item = job.item
    if item.suite_item is not None:
        groups = shapes_groups(item.suite_item)
    else:
        groups = groups_of_caption(item.prompt)
    videos = _both_arms(job)
    scores = {arm: score_video(videos[arm], groups) for arm in ("baseline", "starvid")}
    base, star = scores["baseline"], scores["starvid"]
    return {
        "id": item.id,
        "task": "shapes",
        "caption": item.prompt,
        "seed": job.seed,
        **{arm: {c: float(getattr(s, c)) for c in CATEGORIES} for arm, s in scores.items()},
        "groups": [
            {"count": b.count, "baseline": b.count_ok and b.size_ok}
            | {"starvid": g.count_ok and g.size_ok, "motion": b.motion}
            | {"seen": {"baseline": seen_motion(b), "starvid": seen_motion(g)}}
            for b, g in zip(base.groups, star.groups, strict=True)
        ],
        "extra": {"baseline": base.extra_objects > 0, "starvid": star.extra_objects > 0},
        "leak": {"baseline": base.motion_leak, "starvid": star.motion_leak},
    } | verb_map_distances(job)


def verb_map_distances(job: FinishedJob) -> dict:
    """``{"verb_kl": {arm: {"own", "other"}}}``: the KL of each verb's map to its own noun's
    and to the other nouns' at the end of the guidance window (``guidance.verb_distances``),
    per arm; empty when the run kept no window maps."""
    from starvid.guidance import verb_distances
    from starvid.parsing import parse_prompt
    from starvid.run import RUN_FILES
    from starvid.targets import label_roles

    maps = export.load_maps(job.folder / RUN_FILES["maps"])
    report = json.loads((job.folder / RUN_FILES["report"]).read_text(encoding="utf-8"))
    settings = report["settings"]
    roles = label_roles(
        parse_prompt(job.item.prompt),
        settings.get("spatial_words") or "noun",
        settings.get("syntax_words") or "verb",
    )
    out = {}
    for arm, key in (("baseline", "baseline_window/"), ("starvid", "guided_window/")):
        arm_maps = {k[len(key) :]: m for k, m in maps.items() if k.startswith(key)}
        if arm_maps:
            out[arm] = verb_distances(arm_maps, roles, "kl")
    return {"verb_kl": out} if len(out) == 2 else {}


def detector_row(job: FinishedJob, detector: Detector) -> dict:
    """One video's detector scores in both arms, with each arm's full result (``scores``)."""
    from starvid.evaluation.detector import score_video

    item = job.item.suite_item
    if item is None:
        raise StarVidError(f"{job.folder.name}: the detector scorer needs a suite item")
    videos = _both_arms(job)
    scores = {arm: score_video(videos[arm], item, detector) for arm in ("baseline", "starvid")}
    return {
        "id": item.id,
        "task": item.task,
        "prompt": item.prompt,
        "seed": job.seed,
        **{arm: s.values() for arm, s in scores.items()},
        "scores": {arm: s.model_dump(mode="json") for arm, s in scores.items()},
    }


def evaluate_batch(
    folder: str | Path, scorer: str, detector: str | None = None, device: str = "cpu"
) -> Evaluation:
    """Score every finished job of the batch in ``folder`` with ``scorer`` (see the module)."""
    if scorer not in SCORERS:
        raise StarVidError(f"unknown scorer {scorer!r}: use one of {', '.join(SCORERS)}")
    folder = Path(folder)
    manifest = read_manifest(folder) if folder.is_dir() else None
    if manifest is None:
        raise StarVidError(
            f"no batch in {folder} (manifest.json missing): run python -m starvid batch"
        )
    jobs, unfinished = [], []
    for job in finished_jobs(folder, job_names(manifest)):
        (jobs if isinstance(job, FinishedJob) else unfinished).append(job)
    model = None
    if scorer == "detector":
        from starvid.evaluation.detector import DEFAULT_DETECTOR, load_detector

        plain = next((job for job in jobs if job.item.suite_item is None), None)
        if plain is not None:  # before loading a detector for nothing
            raise StarVidError(
                f"{plain.folder.name}: the detector scorer needs suite items (their facts say "
                "what to look for): run the batch on a suite file (python -m starvid suite NAME)"
            )
        model = load_detector(detector or DEFAULT_DETECTOR, device=device)
    rows = [shapes_row(job) if model is None else detector_row(job, model) for job in jobs]
    if not rows:
        raise StarVidError(f"no finished job in {folder} to score")
    return Evaluation(
        scorer=scorer,
        rows=rows,
        tables=stats.rate_tables(rows, key="task"),
        unfinished=unfinished,
        detector=model.name if model is not None else None,
    )


def write_evaluation(folder: str | Path, evaluation: Evaluation) -> dict[str, Path]:
    """Write ``evaluation.md`` (title, table, unfinished jobs) and ``evaluation.jsonl`` (rows)."""
    folder = Path(folder)
    scorer = evaluation.scorer + (f" ({evaluation.detector})" if evaluation.detector else "")
    lines = [
        f"# Evaluation of {folder.name}",
        "",
        f"Scorer: {scorer}; {len(evaluation.rows)} videos in each arm, paired by prompt and seed; "
        "difference StarVid - baseline in points with its 95 % interval.",
        "",
        evaluation.markdown(),
    ]
    if evaluation.unfinished:
        lines += ["", f"Not scored ({len(evaluation.unfinished)} jobs not finished):"]
        lines += [f"- {name}: {reason}" for name, reason in evaluation.unfinished]
    rows = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in evaluation.rows)
    return {
        "markdown": export.write_text(
            "\n".join(lines) + "\n", folder / "evaluation.md", "evaluation"
        ),
        "rows": export.write_text(rows, folder / "evaluation.jsonl", "evaluation rows"),
    }
