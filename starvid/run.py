"""The run layer: one typed request to a finished run folder, under the CLI, batch and the Studio.

``run_generation(GenerationRequest, folder)`` is the contract: it loads the pipeline, resolves
the input once (``prepare_run``: the parse, the plan at the settings' frame count, settings
resolved against the model), runs it (``execute``: the guided video, the same-seed baseline when
asked, the typed ``RunReport``) and writes it (``save_run``), reporting typed ``RunEvent``s and
stopping at the next step when ``cancel`` is set. The folder's layout::

    FOLDER/guided.mp4         the StarVid video
    FOLDER/baseline.mp4       the unguided video with the same seed (when a baseline ran)
    FOLDER/side_by_side.mp4   baseline | guided (when a baseline ran)
    FOLDER/plan.json          the plan used, keyframes included
    FOLDER/report.json        the run report (docs/design.md, section 2)
    FOLDER/maps.npz           heat maps: "guided/WORD", "guided_window/WORD", "baseline/..."
    FOLDER/attention.npz      with record_attention=full: every token's maps per step
                              ("guided/steps") and per layer ("guided/layer/NAME")
    FOLDER/attention.json     ... and their tokens, words, layers and guidance window
    FOLDER/*.gif              with gif=True: GIFs of the videos

Every file is written to a temporary name and renamed into place once complete and checked, so
a full disk or a size limit never leaves a truncated file behind a success message.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from starvid import export
from starvid.backbones import Backbone, vocabulary_warnings
from starvid.errors import StarVidError
from starvid.memory import check_run_fits
from starvid.parsing import ParsedPrompt
from starvid.pipeline import Cancelled, ProgressFn, StepProgress, VideoResult, generate
from starvid.plan import Plan
from starvid.recording import save_recordings
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

    Args:
        parsed: the prompt's parse.
        backbone: the loaded pipeline (its defaults fill the settings).
        backbone_name: the name it was loaded by, for the report.
        settings: the requested settings.
        plan: the boxes, or None to make them with ``planner``.
        baseline: also run the same-seed baseline.
        planner: "heuristic", "llm" or "auto".

    Returns:
        A ``RunRequest`` with everything resolved; the run is sized against free memory first.
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
    if resolved.plan_kind == "layout":  # here, once: the report then records the plan used
        plan = plan.layout_only()
        notes.append("plan kind 'layout': every box held where it starts")
    check_plan_matches(parsed, plan)
    notes += vocabulary_warnings(parsed.prompt, backbone)
    return RunRequest(parsed, plan, backbone_name, resolved, baseline, tuple(notes))


def execute(
    request: RunRequest,
    backbone: Backbone,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> RunResult:
    """Generate the guided video (and the same-seed baseline when asked) and the report.

    Args:
        request: a resolved request (``prepare_run``).
        backbone: the pipeline it was resolved against.
        progress: gets a ``StepProgress`` after every denoising step of each run.
        cancel: set it to stop at the next step (``Cancelled`` is raised).

    Returns:
        A ``RunResult``: the guided and baseline outputs and the ``RunReport``.
    """
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


# -- the contract -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationRequest:
    """What a front-end asks for, before anything is loaded.

    Args:
        parsed: the prompt's parse (``parse_prompt``, once, at the edge).
        backbone: registry name, folder or hub id.
        settings: generation settings (unset fields take the model's defaults).
        plan: the boxes; None lets ``planner`` make them.
        baseline: also run the same-seed unguided video.
        planner: "heuristic", "llm" or "auto" when there is no plan.
        device: where the model runs (None: CUDA when available).
        gif: also write GIFs of the videos.
    """

    parsed: ParsedPrompt
    backbone: str
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    plan: Plan | None = None
    baseline: bool = False
    planner: str = "heuristic"
    device: str | None = None
    gif: bool = False


@dataclass(frozen=True)
class RunEvent:
    """Progress of a run: a new phase, or (phase "running") a finished denoising step."""

    phase: Literal["loading", "running", "saving", "done"]
    step: StepProgress | None = None


def run_generation(
    request: GenerationRequest,
    folder: str | Path,
    progress: Callable[[RunEvent], None] | None = None,
    cancel: threading.Event | None = None,
) -> RunResult:
    """Load, prepare, execute and save one run into ``folder``: the one way from a request to
    a finished run folder.

    Args:
        request: what to generate.
        folder: the run folder (checked writable before any work).
        progress: gets a ``RunEvent`` at each phase and after every denoising step.
        cancel: set it to stop the run before its next step; ``Cancelled`` is raised and
            nothing is written.

    Returns:
        The ``RunResult`` (videos, maps, report), its ``files`` filled in.
    """
    from starvid.backbones import load_backbone

    def emit(phase, step=None) -> None:
        if progress is not None:
            progress(RunEvent(phase, step))

    r = request
    folder = check_output_folder(folder)  # a bad path fails in a second, before the model loads
    emit("loading")
    pipe = load_backbone(r.backbone, device=r.device)
    if cancel is not None and cancel.is_set():
        raise Cancelled("generation cancelled")
    prepared = prepare_run(r.parsed, pipe, r.backbone, r.settings, r.plan, r.baseline, r.planner)
    emit("running")
    result = execute(prepared, pipe, lambda step: emit("running", step), cancel)
    emit("saving")
    save_run(result, folder, gif=r.gif)
    emit("done")
    return result


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
    """Write the run's files (the layout in the module docstring).

    Args:
        result: the run to write.
        folder: the run folder (created; checked writable first).
        gif: also write GIFs of the videos.

    Returns:
        File key ("guided", "report", ...) -> path; also set as ``result.files``.
    """
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
    recordings = {
        name: r.attention
        for name, r in (("guided", result.guided), ("baseline", result.baseline))
        if r is not None and r.attention is not None
    }
    if recordings:  # the attention debugger's, with record_attention=full
        files |= save_recordings(recordings, folder)
    result.files = files
    return files
