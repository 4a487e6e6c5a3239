"""Steps 1 and 2: the handlers that plan a prompt and edit the plan.

Each handler takes the values of its inputs as one dict keyed by component and returns a dict
keyed by the components it changes (any it leaves out stay as they are). Every handler that
changes the plan redraws everything drawn from it (``EditEvents.views``): chips, canvas,
trajectories, keyframes, the JSON and its export, so nothing shows a stale plan.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr
import numpy as np

from starvid import DEFAULT_BACKBONE
from starvid.backbones import BACKBONES, BackboneDefaults, describe_backbones
from starvid.errors import StarVidError
from starvid.ui.editor import (
    EditorState,
    add_object,
    apply_canvas,
    blank_background,
    canvas_boxes,
    clear_keyframe,
    export_plan,
    fit_background,
    import_plan,
    keyframes,
    new_state,
    read_plan_upload,
    resample,
    resize,
    subject_nouns,
)
from starvid.ui.form import follow_backbone
from starvid.ui.inspect import LiveRun
from starvid.ui.layout import Studio
from starvid.ui.outputs import write_export
from starvid.ui.palette import object_palette
from starvid.ui.text import (
    SYMBOL_RUN,
    ProgressView,
    backbone_info,
    chips_html,
    examples_for,
    keyframe_summary,
    notice_html,
    progress_html,
    unknown_words_html,
    user_message,
)

log = logging.getLogger("starvid.ui")
NOUN_LABEL_COLOR = (90, 90, 90)  # canvas labels that add a new instance of a noun
TRAJECTORY_HEIGHT = 230  # px: the paths fit under the canvas, above the fold at 1440x1000


def backbone_defaults(name: str) -> BackboneDefaults:
    """A registry backbone's defaults (the default backbone's for hub ids and folders)."""
    spec = BACKBONES.get(name) or BACKBONES[DEFAULT_BACKBONE]
    return spec.defaults


def device_text() -> str:
    """Where a run would go: the GPU's name, or the CPU."""
    import torch

    return f"GPU ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "CPU"


def describe(name: str) -> str:
    """The backbone menu's info line for ``name``."""
    row = next((r for r in describe_backbones() if r["name"] == name), None)
    return backbone_info(row, device_text())


def unknown_words_for(prompt: str, name: str) -> list[str]:
    """Words of ``prompt`` a shipped closed-vocabulary backbone never saw (it loads in a
    second; hub models are open-vocabulary and are not loaded for this)."""
    spec = BACKBONES.get(name)
    if spec is None or not spec.is_local:
        return []
    from starvid.backbones import load_backbone, unknown_words

    return unknown_words(prompt, load_backbone(name)) + list(
        dict.fromkeys(SYMBOL_RUN.findall(prompt))
    )


def error_update(ui: Studio, exc: BaseException, suffix: str = "") -> dict:
    """A one-line error in the notice bar; the progress bar no longer says 'done' beside it."""
    if not isinstance(exc, StarVidError):
        log.error("studio handler failed", exc_info=exc)
    return {
        ui.notice: notice_html([user_message(exc) + suffix], "error"),
        ui.generate.progress: progress_html(ProgressView("idle")),
    }


def canvas_update(state: EditorState, frame: int, live: LiveRun | None, background: str):
    """The canvas at ``frame``: the plan's boxes over the chosen run's frame (or a grid)."""
    from gradio_image_annotation import image_annotator

    video = live.frames.get(background) if live is not None else None
    if video is not None and len(video):
        image = fit_background(np.asarray(video[min(frame, len(video) - 1)]), state.size)
    else:
        image = blank_background(state.size)
    colors = object_palette(state.plan, state.parsed)
    ids = [o.id for o in state.plan.objects]
    nouns = subject_nouns(state)
    return image_annotator(
        value={"image": image, "boxes": canvas_boxes(state, frame, colors)},
        label_list=ids + nouns,
        label_colors=[colors[i] for i in ids] + [NOUN_LABEL_COLOR] * len(nouns),
    )


class EditEvents:
    """Handlers of steps 1 and 2 (bound methods, so Gradio passes them the request)."""

    def __init__(self, ui: Studio):
        self.ui = ui

    def unchanged(self) -> dict:
        """An update that changes nothing (Gradio reads an empty dict as one value)."""
        return {self.ui.editor: gr.skip()}

    def views(
        self,
        state: EditorState,
        frame: int,
        data: dict,
        session: str | None = None,
        canvas: bool = True,
    ) -> dict:
        """Everything drawn from the plan, at ``frame``; with ``session`` the export too."""
        from starvid.viz import trajectory_figure

        p, e = self.ui.prompt, self.ui.edit
        colors = object_palette(state.plan, state.parsed)
        w, h = state.size
        kf = {o.id: keyframes(o) for o in state.plan.objects}
        out: dict[Any, Any] = {
            p.chips: chips_html(state, colors),
            # the component's label names the chart: its own title would take the room
            e.trajectory: trajectory_figure(state.plan, frame, kf, h / w, colors).update_layout(
                height=TRAJECTORY_HEIGHT, title=None, margin={"t": 10}
            ),
            p.keyframes: keyframe_summary(state, frame),
        }
        if canvas:
            live, background = data.get(self.ui.live), data.get(e.background, "guided")
            out[e.canvas] = canvas_update(state, frame, live, background)
            out[self.ui.shown] = frame  # set with the canvas: an edit knows its frame
        if session is not None:
            out[e.plan_json] = state.plan.to_json(indent=2)
            out[e.export_btn] = str(write_export(session, export_plan(state)))
            nouns = subject_nouns(state)
            out[e.add_noun] = gr.Dropdown(choices=nouns, value=nouns[0])
        return out

    def _edited(self, edit, data: dict, request: gr.Request, frame: int) -> dict:
        ui = self.ui
        out = {ui.notice: notice_html(edit.notices), ui.editor: edit.state}
        return out | self.views(edit.state, frame, data, request.session_hash, edit.refresh)

    # -- step 1 -----------------------------------------------------------------------------

    def plan(self, data: dict, request: gr.Request) -> dict:
        """Parse and plan the prompt (once: the run reuses this parse)."""
        from starvid.parsing import parse_prompt
        from starvid.planning import make_plan

        ui, p = self.ui, self.ui.prompt
        settings = ui.generate.settings
        try:
            prompt = (data[p.prompt] or "").strip()
            name = data[p.backbone] or DEFAULT_BACKBONE
            if not prompt:
                example = examples_for(name)[0]
                raise StarVidError(f"the prompt is empty: describe the video, e.g. '{example}'")
            parsed = parse_prompt(prompt)
            frames = int(data[settings["frames"]] or backbone_defaults(name).frames)
            seed = int(data[settings["seed"]] or 0)
            plan = make_plan(parsed, frames=frames, seed=seed, planner=data[p.planner])
            d = backbone_defaults(name)
            state = new_state(prompt, parsed, plan, (d.width, d.height))
            unknown = unknown_words_for(prompt, name)
        except Exception as exc:  # noqa: BLE001 - one line for the user; the old plan stays
            return error_update(ui, exc)
        notes = [
            f"Planned {len(plan.objects)} object(s) with the {plan.planner} planner: drag a box "
            "to edit it, then press Generate."
        ]
        notes += parsed.warnings + plan.warnings
        live = data.get(ui.live)
        out = {
            ui.notice: notice_html(notes),
            ui.editor: state,
            ui.generate.progress: progress_html(ProgressView("idle")),
            p.unknown: unknown_words_html(prompt, unknown, name),
            ui.edit.frame: gr.Slider(minimum=0, maximum=plan.frames - 1, value=0, step=1),
        }
        if live is not None and live.report is not None:
            out[ui.inspect.results_state] = stale_text("a new plan")
        return out | self.views(state, 0, data, request.session_hash)

    def example(self, sample: list) -> str:
        """An example's prompt into the prompt box."""
        return sample[0] if sample else gr.skip()

    def backbone(self, data: dict, request: gr.Request) -> dict:
        """Another backbone: its defaults for the settings the user left alone, its examples,
        its video size for the canvas, and its vocabulary check of the planned prompt."""
        ui, p = self.ui, self.ui.prompt
        name = data[p.backbone] or DEFAULT_BACKBONE
        old, new = backbone_defaults(data[ui.active_backbone]), backbone_defaults(name)
        values = {n: data[w] for n, w in ui.generate.settings.items()}
        out: dict[Any, Any] = {
            ui.active_backbone: name,
            p.backbone_info: describe(name),
            p.examples: gr.Dataset(samples=[[e] for e in examples_for(name)]),
        }
        changes = follow_backbone(values, old, new)
        for setting, value in changes.items():
            out[ui.generate.settings[setting]] = value
        state = data.get(ui.editor)
        if state is None:
            return out
        state = resize(state, (new.width, new.height))
        frame = int(data[ui.shown] or 0)
        if "frames" in changes and int(changes["frames"]) != state.plan.frames:
            # Resampled here, with the canvas drawn once from the new timeline: left to the
            # frames event, the canvas's echo of the old timeline pinned every object.
            before = state.plan.frames
            state = resample(state, int(changes["frames"]))
            frame = min(frame, state.plan.frames - 1)
            note = f"Plan resampled from {before} to {state.plan.frames} frames for {name}."
            out[ui.notice] = notice_html([note + " Nothing was pinned."])
            out[ui.edit.frame] = gr.Slider(maximum=state.plan.frames - 1, value=frame)
        out[ui.editor] = state
        out[p.unknown] = unknown_words_html(
            state.prompt, unknown_words_for(state.prompt, name), name
        )
        return out | self.views(state, frame, data, request.session_hash)

    # -- step 2 -----------------------------------------------------------------------------

    def canvas(self, data: dict, request: gr.Request) -> dict:
        """The user moved, resized, added or deleted a box on the canvas."""
        ui = self.ui
        state, value = data.get(ui.editor), data.get(ui.edit.canvas)
        if state is None or not value:
            return self.unchanged()
        frame = int(data[ui.shown] or 0)
        try:
            edit = apply_canvas(state, frame, value.get("boxes") or [])
        except Exception as exc:  # noqa: BLE001 - the canvas goes back to the plan
            out = error_update(ui, exc)
            live, bg = data.get(ui.live), data.get(ui.edit.background)
            return out | {ui.edit.canvas: canvas_update(state, frame, live, bg)}
        if edit.state == state and not edit.notices:
            return self.unchanged()
        return self._edited(edit, data, request, frame)

    def frame(self, data: dict) -> dict:
        """Show another frame: the canvas, the dashed boxes of the paths, the keyframes."""
        state = data.get(self.ui.editor)
        if state is None:
            return self.unchanged()
        return self.views(state, int(data[self.ui.edit.frame] or 0), data)

    def add(self, data: dict, request: gr.Request) -> dict:
        """Add an instance of the chosen noun at the shown frame."""
        ui = self.ui
        state = data.get(ui.editor)
        try:
            if state is None:
                raise StarVidError("no plan yet: type a prompt and press Plan")
            noun = data.get(ui.edit.add_noun)
            if not noun:
                raise StarVidError("choose the new object's noun first")
            frame = int(data[ui.shown] or 0)
            return self._edited(add_object(state, noun, frame), data, request, frame)
        except Exception as exc:  # noqa: BLE001
            return error_update(ui, exc)

    def unpin(self, data: dict, request: gr.Request) -> dict:
        """Unpin the shown frame's keyframes: those boxes follow the interpolation again."""
        state = data.get(self.ui.editor)
        if state is None:
            return error_update(self.ui, StarVidError("no plan yet: type a prompt and press Plan"))
        frame = int(data[self.ui.shown] or 0)
        return self._edited(clear_keyframe(state, frame), data, request, frame)

    def frames(self, data: dict, request: gr.Request) -> dict:
        """The frame count changed: the same paths over the new count of frames."""
        ui = self.ui
        state, frames = data.get(ui.editor), data.get(ui.generate.settings["frames"])
        if state is None or not frames or int(frames) == state.plan.frames:
            return self.unchanged()
        try:
            state = resample(state, int(frames))
        except Exception as exc:  # noqa: BLE001
            return error_update(ui, exc)
        frame = min(int(data[ui.shown] or 0), state.plan.frames - 1)
        return {
            ui.notice: notice_html([f"Plan resampled to {state.plan.frames} frames."]),
            ui.editor: state,
            ui.edit.frame: gr.Slider(maximum=state.plan.frames - 1, value=frame),
        } | self.views(state, frame, data, request.session_hash)

    def import_file(self, data: dict, request: gr.Request) -> dict:
        """A plan from an uploaded JSON file (refused in one line when bad; the plan stays)."""
        from starvid.parsing import parse_prompt

        ui = self.ui
        try:
            path = data.get(ui.edit.import_btn)
            if not path:
                raise StarVidError("no file uploaded")
            plan = read_plan_upload(path)
            d = backbone_defaults(data[ui.prompt.backbone] or DEFAULT_BACKBONE)
            state = import_plan(plan, data.get(ui.editor), (d.width, d.height), parse_prompt)
        except Exception as exc:  # noqa: BLE001
            return error_update(ui, exc, " (your current plan is unchanged)")
        n, frames = len(state.plan.objects), state.plan.frames
        return {
            ui.notice: notice_html([f"Imported a plan with {n} object(s), {frames} frames."]),
            ui.editor: state,
            ui.edit.frame: gr.Slider(minimum=0, maximum=frames - 1, value=0, step=1),
            ui.generate.settings["frames"]: frames,
        } | self.views(state, 0, data, request.session_hash)

    def background(self, data: dict) -> dict:
        """Another video frame (or none) under the boxes."""
        state = data.get(self.ui.editor)
        if state is None:
            return self.unchanged()
        frame = int(data[self.ui.shown] or 0)
        live, background = data.get(self.ui.live), data[self.ui.edit.background]
        return {self.ui.edit.canvas: canvas_update(state, frame, live, background)}


def stale_text(why: str) -> str:
    """The marker over results that no longer match what the user set up."""
    return f'<div class="sv-stale">⚠️ These results are from the previous run ({why} since).</div>'
