"""Step 4, the attention debugger (in the Attention tab): every token, layer and step
of a run's cross-attention, in the views of ``starvid.attention_views``, from the recording a
run made once with ``record_attention=full`` (browsing never generates again).

``debugger_tab`` builds the controls, ``DebuggerEvents`` draws the chosen view (a dict keyed
by component) and saves it as PNG (GIF for the animation) into the run folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from starvid import attention_views as views
from starvid.recording import AttentionRecording

Component = gr.components.Component
MEAN = "mean"  # the layer and step choice that means the guidance's mean / all steps
VIEWS = [
    ("Map over the frame, and alone", "overlay"),
    ("Frames x steps", "steps"),
    ("All subjects' words at one frame", "words"),
    ("Each layer alone", "layers"),
    ("Each head of one layer", "heads"),
    ("Guided, baseline, difference", "compare"),
    ("Prompt shaded by in-box share", "prompt_inbox"),
    ("Prompt shaded by entropy", "prompt_entropy"),
    ("When the maps settle (steps)", "settle"),
    ("Animation over the frames", "animation"),
]
EMPTY_NOTE = (
    "Nothing recorded yet: set **Attention debugger: record** to *full* (or *full_heads*) "
    "under More settings, then Generate. The run records every token at every layer and step "
    "once; the views below are drawn from that recording."
)


@dataclass
class DebuggerSection:
    """The Debugger tab's controls, its figure and its saved file."""

    view: Component
    run: Component
    token: Component
    layer: Component
    step: Component
    frame: Component
    opacity: Component
    note: Component
    plot: Component
    save_btn: Component
    saved: Component

    def controls(self) -> list[Component]:
        return [self.view, self.run, self.token, self.layer, self.step, self.frame, self.opacity]


def debugger_tab() -> DebuggerSection:
    """The debugger, under the Attention tab's heat map (a seventh tab would push the last
    tabs into the tab bar's overflow menu)."""
    with gr.Accordion("Debugger: every token, layer and step", open=True, elem_id="debugger"):
        note = gr.Markdown(EMPTY_NOTE, elem_id="debug-note", elem_classes=["sv-small"])
        with gr.Row():
            view = gr.Dropdown(VIEWS, value="overlay", label="View", elem_id="debug-view")
            run = gr.Radio(["guided", "baseline"], value="guided", label="Run", elem_id="debug-run")
            token = gr.Dropdown(
                [], label="Word or token", elem_id="debug-token",
                info="every word of the prompt; #i the raw tokens (start and end included)",
            )  # fmt: skip
        with gr.Row():
            layer = gr.Dropdown(
                [MEAN], value=MEAN, label="Layer", elem_id="debug-layer",
                info="mean: the guidance's layers, as the losses read them; level:N one "
                "resolution's layers at every step; a layer alone: its mean over steps",
            )  # fmt: skip
            step = gr.Dropdown([MEAN], value=MEAN, label="Step", elem_id="debug-step")
            frame = gr.Slider(0, 15, value=0, step=1, label="Frame", elem_id="debug-frame")
            opacity = gr.Slider(
                0, 1, value=0.6, step=0.05, label="Map opacity over the frame",
                elem_id="debug-opacity", info="0: the frame alone, 1: the map alone",
            )  # fmt: skip
        plot = gr.Plot(label="Attention debugger", elem_id="debug-plot")
        with gr.Row():
            save_btn = gr.Button("Save view (PNG; GIF for the animation)", elem_id="debug-save")
            saved = gr.File(label="Saved view", elem_id="debug-saved")
    return DebuggerSection(
        view, run, token, layer, step, frame, opacity, note, plot, save_btn, saved
    )


def debugger_outputs(d: DebuggerSection) -> list[Component]:
    """What a finished run changes in the tab."""
    return [d.note, d.plot, d.view, d.run, d.token, d.layer, d.step, d.frame, d.opacity]


def recordings_of(result) -> dict[str, AttentionRecording]:
    """A finished run's recordings by run name ({} when the run recorded none)."""
    runs = {"guided": result.guided, "baseline": result.baseline}
    return {k: r.attention for k, r in runs.items() if r is not None and r.attention is not None}


def token_choices(rec: AttentionRecording) -> list[tuple[str, str]]:
    """(label, key) for every word, then every raw token as ``#i``."""
    words = [(w, w) for w in rec.words]
    return words + [(f"#{i} {t}", f"#{i}") for i, t in enumerate(rec.tokens)]


def step_choices(rec: AttentionRecording) -> list[tuple[str, str]]:
    """The step menu: the mean over steps, then each step, the guidance window's marked."""
    marked = [f"{s} (guidance window)" if s < rec.window else str(s) for s in range(rec.n_steps)]
    return [(MEAN, MEAN)] + [(label, str(s)) for s, label in enumerate(marked)]


def done_update(d: DebuggerSection, live, state, frames: int) -> dict:
    """The tab's controls for a finished run (its words, layers and steps) and its first view."""
    recordings = live.recordings
    rec = recordings.get("guided") or next(iter(recordings.values()), None)
    if rec is None:
        return {d.note: EMPTY_NOTE, d.plot: None}
    nouns = [w for w in rec.words if w in live.word_subjects] or list(rec.words)
    runs = list(recordings)
    first = {"view": "overlay", "run": runs[0], "token": nouns[0], "layer": MEAN}
    view = draw(live, state, first | {"step": MEAN, "frame": 0, "opacity": 0.6})
    return {
        d.note: f"Recorded: {len(rec.tokens)} tokens, {len(rec.layer_names)} layers, "
        f"{rec.n_steps} steps (guidance window: the first {rec.window}), runs: {', '.join(runs)}.",
        d.token: gr.Dropdown(choices=token_choices(rec), value=nouns[0] if nouns else "#0"),
        d.layer: gr.Dropdown(choices=[MEAN, *rec.level_choices(), *rec.layer_names], value=MEAN),
        d.step: gr.Dropdown(choices=step_choices(rec), value=MEAN),
        d.frame: gr.Slider(minimum=0, maximum=frames - 1, value=0, step=1),
        d.run: gr.Radio(choices=runs, value=runs[0]),
        d.view: "overlay",
        d.opacity: 0.6,
        d.plot: view.figure() if view is not None else None,
    }


def word_boxes(live, state) -> dict[str, list[list[list[float]]]]:
    """Word -> per frame, the boxes of the subject it belongs to (nouns and verbs)."""
    if state is None:
        return {}
    out = {}
    for word, subject in live.word_subjects.items():
        objects = [o for o in state.plan.objects if o.subject == subject]
        if objects:
            frames = len(objects[0].boxes)
            out[word] = [[list(o.boxes[f]) for o in objects] for f in range(frames)]
    return out


def draw(live, state, choice: dict) -> views.AttentionView | None:
    """The chosen view of the live run's recording (None when there is none)."""
    recs = getattr(live, "recordings", None) or {}
    rec = recs.get(choice["run"]) or recs.get("guided")
    if rec is None:
        return None
    key = choice["token"] or next(iter(rec.words), "#0")
    layer = None if choice["layer"] in (None, MEAN) else choice["layer"]
    step = None if choice["step"] in (None, MEAN) else int(choice["step"])
    frame = int(choice["frame"] or 0)
    video = live.frames.get(choice["run"]) if live.frames else None
    boxes = word_boxes(live, state)
    f_boxes = boxes.get(key, [])[frame] if frame < len(boxes.get(key, [])) else []
    subjects = [w for w in rec.words if w in live.word_subjects] or list(rec.words)[:4]
    kind = choice["view"]
    if kind == "overlay":
        opacity = float(choice["opacity"])
        return views.overlay_view(rec, key, frame, video, opacity, layer, step, f_boxes)
    if kind == "steps":
        return views.steps_view(rec, key, level=layer if layer and "level:" in layer else None)
    if kind == "words":
        return views.words_view(rec, subjects, frame, video)
    if kind == "layers":
        return views.layers_view(rec, key, frame)
    if kind == "heads":
        return views.heads_view(rec, key, layer or rec.guidance_layers[0], frame)
    if kind == "compare" and "baseline" in recs:
        return views.compare_view(recs["guided"], recs["baseline"], key, step)
    if kind in ("prompt_inbox", "prompt_entropy"):
        return views.prompt_view(rec, boxes, by=kind.removeprefix("prompt_"))
    if kind == "settle":
        return views.settle_view(rec, subjects)
    if kind == "animation":
        return views.animation_view(rec, key, video, float(choice["opacity"]), layer)
    return None


class DebuggerEvents:
    """The Debugger tab's handlers."""

    def __init__(self, ui):
        self.ui = ui
        self.d: DebuggerSection = ui.inspect.debugger

    def inputs(self) -> set[Component]:
        return {self.ui.live, self.ui.editor, *self.d.controls()}

    def _choice(self, data: dict) -> dict:
        d = self.d
        names = ("view", "run", "token", "layer", "step", "frame", "opacity")
        return {n: data.get(getattr(d, n)) for n in names}

    def show(self, data: dict) -> dict:
        """Draw the chosen view."""
        from starvid.errors import StarVidError

        try:
            view = draw(data.get(self.ui.live), data.get(self.ui.editor), self._choice(data))
        except StarVidError as exc:  # e.g. per-head maps not recorded
            return {self.d.note: f"**Cannot draw this view:** {exc}", self.d.plot: None}
        if view is None:
            return {self.d.note: EMPTY_NOTE, self.d.plot: None}
        return {self.d.plot: view.figure()}

    def save(self, data: dict) -> dict:
        """Save the chosen view into the run folder's ``views/`` and offer it."""
        live = data.get(self.ui.live)
        view = draw(live, data.get(self.ui.editor), self._choice(data)) if live else None
        if view is None or "report" not in live.files:
            return {self.d.note: EMPTY_NOTE}
        folder = Path(live.files["report"]).parent / "views"
        folder.mkdir(exist_ok=True)
        token = str(data.get(self.d.token) or "all").replace("#", "token")
        stem = re.sub(r"[^\w.-]", "_", f"{view.kind}-{token}")
        if view.frames:
            path = view.save_gif(folder / f"{stem}.gif")
        else:
            path = view.save_png(folder / f"{stem}.png")
        return {self.d.saved: str(path)}
