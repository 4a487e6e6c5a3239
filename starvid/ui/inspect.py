"""Step 4, Inspect: what a run leaves to look at, and the figures drawn from it.

``LiveRun`` is the last run of a session as the app keeps it: the heat maps of every step (as
they stream in, float16), the decoded frames, the typed report and the run folder's files.
Figures come from ``starvid.viz`` with the editor's palette, so an object has one colour on the
canvas, in the chips and in every chart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from starvid.parsing import ParsedPrompt
from starvid.report import LossRow, RunReport
from starvid.ui.editor import EditorState
from starvid.viz import heatmap_figure, inbox_share_figure, loss_figure


@dataclass
class LiveRun:
    """One run as the app shows it (a new run starts a new one)."""

    maps: dict[str, dict[int, dict[str, np.ndarray]]] = field(default_factory=dict)
    frames: dict[str, np.ndarray] = field(default_factory=dict)  # run -> (F, H, W, 3) uint8
    losses: list[LossRow] = field(default_factory=list)  # live rows, one per guided step
    report: RunReport | None = None
    files: dict[str, Path] = field(default_factory=dict)
    word_subjects: dict[str, int] = field(default_factory=dict)  # map label -> subject index
    parsed: ParsedPrompt | None = None  # the run's parse (its colour words colour the charts)
    recordings: dict = field(default_factory=dict)  # run -> AttentionRecording (the debugger)

    def store_maps(self, run: str, step: int, maps: dict | None) -> None:
        """Keep one step's per-word maps ``(F, h, w)`` (float16, so a run's history stays
        small)."""
        if maps:
            steps = self.maps.setdefault(run, {})
            steps[int(step)] = {str(w): np.asarray(m).astype(np.float16) for w, m in maps.items()}

    def store_losses(self, step: int, losses: dict | None) -> None:
        """Keep a guided step's last gradient iteration (the live loss chart)."""
        if losses:
            keep = {k: v for k, v in losses.items() if k in LossRow.model_fields}
            self.losses.append(LossRow(**{"iteration": 0, **keep, "step": step - 1}))

    def words(self) -> list[str]:
        """Words with maps in any run, in first-seen order."""
        out: list[str] = []
        for steps in self.maps.values():
            for per_word in steps.values():
                out += [w for w in per_word if w not in out]
        return out

    def pick_map(self, run: str, word: str, step: int | None) -> tuple[np.ndarray, int] | None:
        """The map of ``word`` in ``run`` at ``step`` (or the nearest recorded step before)."""
        steps = self.maps.get(run, {})
        have = sorted(s for s, per_word in steps.items() if word in per_word)
        if not have:
            return None
        before = [s for s in have if step is None or s <= step]
        chosen = before[-1] if before else have[0]
        return np.asarray(steps[chosen][word], dtype=np.float32), chosen


def word_subjects(
    parsed, spatial_words: str = "noun", syntax_words: str = "verb"
) -> dict[str, int]:
    """Heat-map label -> index of the subject it belongs to, by the engine's own labelling
    (``starvid.targets.label_subjects``: adjectives and motion words too in "phrase" modes)."""
    from starvid.targets import label_subjects

    return label_subjects(parsed, spatial_words, syntax_words)


def heatmap_for(
    live: LiveRun | None, state: EditorState | None, word: str | None, frame: int, step: int | None
):
    """The heat map of one word at one frame and step, guided and baseline side by side, with
    the boxes of the subject the word belongs to; None when there is nothing to show."""
    if live is None or not word:
        return None
    maps, under, used = {}, {}, set()
    for run in ("guided", "baseline"):
        got = live.pick_map(run, word, step)
        if got is None:
            continue
        arr, chosen = got
        used.add(chosen)
        f = int(min(max(frame, 0), arr.shape[0] - 1))
        maps[run] = arr[f]
        video = live.frames.get(run)
        if video is not None and len(video):
            under[run] = np.asarray(video[min(f, len(video) - 1)])
    if not maps:
        return None
    boxes = []
    if state is not None:
        owner = live.word_subjects.get(word)
        for o in state.plan.objects:
            mine = o.subject == owner if owner is not None else word in (o.noun, *o.verbs)
            if mine and frame < len(o.boxes):
                boxes.append((o.id, tuple(o.boxes[frame])))
    title = f"'{word}' at frame {frame}, step {', '.join(str(s) for s in sorted(used))}"
    return heatmap_figure(maps, under or None, title=title, boxes=boxes)


def inbox_figure(live: LiveRun, key: str, colors: dict[str, tuple[int, int, int]]):
    """The in-box share chart of the run's report (its legend's means are the report's)."""
    return inbox_share_figure(live.report, key, colors) if live.report is not None else None


def losses_figure(live: LiveRun):
    """The loss chart: the report's rows once the run is done, the live rows until then."""
    return loss_figure(live.report.losses if live.report is not None else live.losses)


def run_difference(previous: RunReport, current: RunReport) -> str:
    """What the previous run did differently from the current one, for the side-by-side
    comparison: the prompt when it changed, every setting that differs, and both runs' mean
    in-box share (guided)."""
    lines = []
    if previous.prompt != current.prompt:
        lines.append(f"prompt: '{previous.prompt}'")
    if previous.backbone != current.backbone:
        lines.append(f"backbone: {previous.backbone} (now {current.backbone})")
    old, new = previous.settings.model_dump(), current.settings.model_dump()
    changed = [f"{k} {old[k]} (now {new[k]})" for k in old if old[k] != new.get(k)]
    lines.append("settings: " + (", ".join(changed) if changed else "the same as now"))
    shares = []
    for label, report in (("previous", previous), ("now", current)):
        means = [runs["guided"] for runs in report.share_means().values() if "guided" in runs]
        if means:
            shares.append(f"{label} {sum(means) / len(means):.2f}")
    if shares:
        lines.append("mean in-box share (guided): " + ", ".join(shares))
    return "**Previous run** · " + " · ".join(lines)
