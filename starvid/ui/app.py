"""The Studio app: the view of ``layout`` with the handlers of ``events_edit`` and
``events_run`` wired to it, and the launch options that keep its outputs in bounds."""

from __future__ import annotations

import logging
import threading
from typing import Any

import gradio as gr

from starvid import DEFAULT_BACKBONE
from starvid.backbones import describe_backbones
from starvid.parsing import MAX_PROMPT_CHARS
from starvid.ui.debugger import DebuggerEvents
from starvid.ui.events_edit import EditEvents, backbone_defaults, describe
from starvid.ui.events_run import RunEvents
from starvid.ui.jobs import JOBS
from starvid.ui.layout import CSS, Studio, edit_section, generate_section, prompt_section
from starvid.ui.outputs import MAX_AGE_S, MAX_UPLOAD, remove_session
from starvid.ui.text import backbone_label

HEADER = (
    "## StarVid Studio · training-free layout and action guidance for text-to-video diffusion "
    "([arXiv 2409.15259](https://arxiv.org/abs/2409.15259))"
)
# The canvas zooms on the mouse wheel: a view that changes while the plan does not, and boxes
# that leave the frame. The wheel scrolls the page instead (the canvas never sees the event).
# A chart redrawn inside a hidden tab takes Plotly's default 700 px width (its box measures 0),
# cut off in a narrower box with its colour bar and legend lost; once a tab shows, a window
# resize lets every chart fit its box again.
HEAD_SCRIPT = """<script>
document.addEventListener("wheel", (e) => {
  if (e.target instanceof Element && e.target.closest("#canvas")) e.stopPropagation();
}, {capture: true});
document.addEventListener("click", (e) => {
  if (e.target instanceof Element && e.target.closest("[role=tab]")) {
    for (const ms of [30, 250]) setTimeout(() => window.dispatchEvent(new Event("resize")), ms);
  }
});
</script>"""
COUNTER_JS = f"""(text) => {{
  const n = (text || '').length;
  const line = `${{n}} / {MAX_PROMPT_CHARS} characters`;
  return n > {MAX_PROMPT_CHARS}
    ? `<span class="sv-over">${{line}}: too long, shorten it by ${{n - {MAX_PROMPT_CHARS}}}</span>`
    : line;
}}"""


def warm_up() -> threading.Thread:
    """Load the parser and the planner's language model in the background while the page
    opens: loaded on the first Plan, they made it take 18 s with nothing but a spinner."""

    def load() -> None:
        try:
            from starvid.parsing import parse_prompt
            from starvid.planning import llm_available, load_model, make_plan

            parsed = parse_prompt("a red circle moving left")
            if llm_available():
                load_model()
                make_plan(parsed, frames=2)  # the few-shot document's prefix, evaluated once
        except Exception:  # noqa: BLE001 - the first Plan loads them and says what is wrong
            logging.getLogger("starvid.ui").warning("warm-up failed", exc_info=True)

    thread = threading.Thread(target=load, name="starvid-warm-up", daemon=True)
    thread.start()
    return thread


def launch_options() -> dict[str, Any]:
    """Options for ``launch``: the style, the page script (no canvas zoom, charts that fit
    their tab) and the upload limit."""
    return {"css": CSS, "head": HEAD_SCRIPT, "max_file_size": MAX_UPLOAD}


def build_app() -> gr.Blocks:
    """The StarVid Studio Blocks app (call ``.queue(...).launch(**launch_options())``)."""
    return build_studio()[0]


def build_studio() -> tuple[gr.Blocks, Studio]:
    """The app and its named components (tests drive the handlers through them)."""
    d0 = backbone_defaults(DEFAULT_BACKBONE)
    choices = [(backbone_label(r), r["name"]) for r in describe_backbones()]
    # Gradio's own copies of served files go after MAX_AGE_S, checked every half hour.
    with gr.Blocks(title="StarVid Studio", delete_cache=(1800, MAX_AGE_S), fill_width=True) as demo:
        gr.Markdown(HEADER, elem_id="header")
        with gr.Row(equal_height=False):
            with gr.Column(scale=4, min_width=320):
                prompt = prompt_section(choices, describe(DEFAULT_BACKBONE))
            with gr.Column(scale=5, min_width=400):
                edit = edit_section(d0.frames)
            with gr.Column(scale=5, min_width=400):
                generate, inspect = generate_section(d0)
        notice = gr.HTML(elem_id="notice")
        ui = Studio(
            prompt,
            edit,
            generate,
            inspect,
            notice,
            editor=gr.State(None),
            live=gr.State(None),
            shown=gr.State(0),
            active_backbone=gr.State(DEFAULT_BACKBONE),
        )
        wire_edit(ui)
        wire_run(ui)
        demo.unload(_forget_session)
    return demo, ui


def _forget_session(request: gr.Request) -> None:
    """The browser session ended: its run stops and its files go."""
    JOBS.cancel(request.session_hash)
    remove_session(request.session_hash)


def wire_edit(ui: Studio) -> None:
    """Steps 1 and 2: planning and every edit of the plan."""
    h, p, e, g = EditEvents(ui), ui.prompt, ui.edit, ui.generate
    frames = g.settings["frames"]
    common = {ui.editor, ui.live, ui.shown, e.background}
    views = [
        ui.notice,
        ui.editor,
        ui.shown,
        g.progress,
        p.chips,
        e.trajectory,
        p.keyframes,
        e.canvas,
        e.plan_json,
        e.export_btn,
        e.add_noun,
    ]
    plan_inputs = {p.prompt, p.backbone, p.planner, frames, g.settings["seed"]} | common
    plan_outputs = views + [p.unknown, e.frame, ui.inspect.results_state]
    quiet = {"show_progress": "hidden"}
    # planning's spinner sits on the chips, where its answer appears
    on_chips = {"show_progress_on": [p.chips]}
    gr.on([p.plan_btn.click, p.prompt.submit], h.plan, plan_inputs, plan_outputs, **on_chips)
    p.examples.click(h.example, [p.examples], [p.prompt], **quiet).then(
        h.plan, plan_inputs, plan_outputs, **on_chips
    )
    p.prompt.change(None, [p.prompt], [p.counter], js=COUNTER_JS)
    settings = set(g.settings.values())
    p.backbone.change(
        h.backbone,
        {p.backbone, ui.active_backbone} | settings | common,
        views + [ui.active_backbone, p.backbone_info, p.examples, p.unknown, e.frame, *settings],
        **quiet,
    )
    e.canvas.change(h.canvas, {e.canvas} | common, views, **quiet)
    e.frame.change(h.frame, {e.frame} | common, views, **quiet)
    e.add_btn.click(h.add, {e.add_noun} | common, views, **quiet)
    e.unpin_btn.click(h.unpin, common, views, **quiet)
    frames.change(h.frames, {frames} | common, views + [e.frame], **quiet)
    e.import_btn.upload(
        h.import_file, {e.import_btn, p.backbone} | common, views + [e.frame, frames], **quiet
    )
    e.background.change(h.background, {e.background} | common, [e.canvas], **quiet)


def wire_run(ui: Studio) -> None:
    """Steps 3 and 4: generate (request, then the queued run), cancel, and inspect."""
    h, p, e, g, i = RunEvents(ui), ui.prompt, ui.edit, ui.generate, ui.inspect
    requested = g.generate_btn.click(
        h.request,
        {ui.live},
        [ui.notice, g.progress, i.results_state],
        queue=False,
        show_progress="hidden",
    )
    run_inputs = {
        ui.editor,
        ui.live,
        ui.shown,
        p.prompt,
        p.backbone,
        g.baseline,
        e.background,
        i.inbox_kind,
    } | set(g.settings.values())
    run = requested.then(
        h.generate,
        run_inputs,
        h.generate_outputs(),
        show_progress="hidden",
        concurrency_id="generate",
        concurrency_limit=1,
    )
    g.cancel_btn.click(
        h.cancel,
        {ui.live},
        [ui.notice, g.progress, i.results_state],
        cancels=[run],
        concurrency_limit=None,
        show_progress="hidden",
    )
    heat_inputs = {ui.live, ui.editor, i.word, i.heat_frame, i.heat_step}
    for control in (i.word, i.heat_frame, i.heat_step):
        # .input (user moves only): a run's own updates already drew the map
        control.input(h.heat, heat_inputs, [i.heatmap], show_progress="hidden")
    i.inbox_kind.input(h.inbox, {ui.live, i.inbox_kind}, [i.inbox_plot], show_progress="hidden")
    debug, d = DebuggerEvents(ui), i.debugger
    for control in d.controls():
        control.input(debug.show, debug.inputs(), [d.note, d.plot], show_progress="hidden")
    d.save_btn.click(debug.save, debug.inputs(), [d.saved, d.note], show_progress="hidden")
