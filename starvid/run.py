"""The run layer: prepare -> execute -> save, the one path under the CLI and the Studio.

Front-ends resolve their input once, at the edge, into a ``RunRequest`` (``prepare_run``: the
parse, the plan at the settings' frame count, settings resolved against the backbone), run it
(``execute``: the guided video, the same-seed baseline when asked, the typed ``RunReport``) and
write it (``save_run``) in one layout, the same from the CLI and the app::

    FOLDER/guided.mp4         the StarVid video
    FOLDER/baseline.mp4       the unguided video with the same seed (when a baseline ran)
    FOLDER/side_by_side.mp4   baseline | guided (when a baseline ran)
    FOLDER/plan.json          the plan used, keyframes included
    FOLDER/report.json        the run report (design notes, section 2)
    FOLDER/maps.npz           heat maps: "guided/WORD", "guided_window/WORD", "baseline/..."
    FOLDER/*.gif              with gif=True: GIFs of the videos

Every file is written to a temporary name and renamed into place once complete and checked, so
a full disk or a size limit never leaves a truncated file behind a success message.
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from starvid import export
from starvid.backbones import Backbone, vocabulary_warnings
from starvid.errors import StarVidError
from starvid.memory import check_run_fits
from starvid.parsing import ParsedPrompt
from starvid.pipeline import ProgressFn, VideoResult, generate
from starvid.plan import Plan
from starvid.report import LossRow, ObjectReport, RunReport
from starvid.settings import GenerationSettings, ResolvedSettings
from starvid.targets import check_plan_matches

RUN_FILES = {
    "guided": "guided.mp4",
    "baseline": "baseline.mp4",
    "side_by_side": "side_by_side.mp4",
    "plan": "plan.json",
    "report": "report.json",
    "maps": "maps.npz",
}


@dataclass(frozen=True)
class RunRequest:
    """Everything a run needs, resolved: what ``execute`` takes."""

    parsed: ParsedPrompt
    plan: Plan  # as many frames as the settings
    backbone: str  # the name it was loaded by (registry name, folder or hub id)
    settings: ResolvedSettings
    baseline: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def prompt(self) -> str:
        return self.parsed.prompt


@dataclass
class RunResult:
    """A guided run (and optionally its same-seed baseline) with the run report."""

    request: RunRequest
    guided: VideoResult
    baseline: VideoResult | None
    report: RunReport
    files: dict[str, Path] = field(default_factory=dict)


def prepare_run(
    parsed: ParsedPrompt,
    backbone: Backbone,
    backbone_name: str,
    settings: GenerationSettings,
    plan: Plan | None = None,
    baseline: bool = False,
    planner: str = "heuristic",
) -> RunRequest:
    """Resolve the settings against the backbone and fit the plan to them (made when None).

    A plan with another frame count than the settings is resampled (a warning says so); when
    the settings leave the frame count open, the plan's count is used.
    """
    notes: list[str] = []
    if plan is not None and settings.frames is None:
        settings = settings.model_copy(update={"frames": plan.frames})
    resolved = settings.resolve(backbone)
    check_run_fits(backbone, resolved.frames, resolved.height, resolved.width)
    if plan is None:
        from starvid.planning import make_plan

        plan = make_plan(parsed, frames=resolved.frames, seed=resolved.seed, planner=planner)
    elif plan.frames != resolved.frames:
        notes.append(f"plan has {plan.frames} frames; resampled to {resolved.frames}")
        plan = plan.resample(resolved.frames)
    check_plan_matches(parsed, plan)
    notes += vocabulary_warnings(parsed.prompt, backbone)
    return RunRequest(parsed, plan, backbone_name, resolved, baseline, tuple(notes))


def execute(
    request: RunRequest,
    backbone: Backbone,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> RunResult:
    """Generate the guided video (and the same-seed baseline when asked) and the report."""
    r = request
    guided = generate(backbone, r.parsed, r.plan, r.settings, True, progress, cancel)
    base = None
    if r.baseline:
        base = generate(backbone, r.parsed, r.plan, r.settings, False, progress, cancel)
    return RunResult(r, guided, base, build_report(r, backbone, guided, base))


def _shares(a: np.ndarray) -> list[list[float | None]]:
    return [[round(float(v), 4) if np.isfinite(v) else None for v in row] for row in a]


def build_report(
    request: RunRequest, backbone: Backbone, guided: VideoResult, base: VideoResult | None
) -> RunReport:
    """The run report of a guided run and its baseline."""
    runs = {"guided": guided} | ({"baseline": base} if base is not None else {})
    objects = []
    for k, obj in enumerate(request.plan.objects):
        objects.append(
            ObjectReport(
                id=obj.id,
                noun=obj.noun,
                inbox_share={name: _shares(r.inbox_share)[k] for name, r in runs.items()},
                inbox_share_final={
                    name: _shares(r.inbox_share_final)[k] for name, r in runs.items()
                },
            )
        )
    warnings = list(request.warnings)
    for name, r in runs.items():
        warnings.extend(f"{name}: {w}" for w in r.warnings)
    return RunReport(
        prompt=request.prompt,
        backbone=request.backbone,
        seed=request.settings.seed,
        settings=request.settings,
        plan=request.plan,
        losses=[
            LossRow(**{k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()})
            for row in guided.losses
        ],
        objects=objects,
        timing_s={k: round(r.timing_s, 3) for k, r in runs.items()},
        peak_memory_mb={k: round(r.peak_memory_mb, 1) for k, r in runs.items()},
        working_memory_mb={k: round(r.working_memory_mb, 1) for k, r in runs.items()},
        frames=int(guided.frames.shape[0]),
        fps=backbone.defaults.fps,
        warnings=warnings,
    )


# -- files ------------------------------------------------------------------------------------


def check_output_folder(folder: str | Path) -> Path:
    """Create the run folder and prove it writable now, before any work is done."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise StarVidError(f"the output folder is a file: {folder}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise StarVidError(f"cannot write to {folder}: {exc.strerror or exc}") from exc
    return folder


def run_maps(result: RunResult) -> dict[str, np.ndarray]:
    """The run's heat maps under their npz keys ("guided/cats", "baseline_window/dog", ...)."""
    maps = {}
    runs = {"guided": result.guided} | (
        {"baseline": result.baseline} if result.baseline is not None else {}
    )
    for name, r in runs.items():
        maps |= {f"{name}/{w}": m for w, m in r.maps.items()}
        maps |= {f"{name}_window/{w}": m for w, m in r.maps_window.items()}
    return maps


def save_run(result: RunResult, folder: str | Path, gif: bool = False) -> dict[str, Path]:
    """Write the run's files (the layout in the module docstring); returns name -> path."""
    folder = check_output_folder(folder)
    fps = result.report.fps
    files: dict[str, Path] = {}
    videos = {"guided": result.guided.frames}
    if result.baseline is not None:
        videos["baseline"] = result.baseline.frames
        videos["side_by_side"] = export.side_by_side(result.baseline.frames, result.guided.frames)
    for name, frames in videos.items():
        files[name] = export.write_mp4(frames, folder / RUN_FILES[name], fps=fps)
        if gif:
            files[f"{name}_gif"] = export.write_gif(frames, folder / f"{name}.gif", fps=fps)
    files["plan"] = export.write_text(result.request.plan.to_json(indent=2), folder / "plan.json")
    files["report"] = export.write_text(result.report.to_json(), folder / "report.json")
    files["maps"] = export.save_maps(run_maps(result), folder / RUN_FILES["maps"])
    result.files = files
    return files
