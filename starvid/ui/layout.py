"""The Studio's view: one function per step, each returning its named components.

Three columns on a wide window: 1 Prompt (with the parse's chips), 2 Plan and edit (the
keyframe canvas, the plan's paths under it, and its tools), 3 Generate with 4 Inspect beside it
(the run's results in tabs right under the buttons that made them). One notice bar at the
bottom of the window says what the last action did wherever the user is: one line (more folded
under it), a close button, and notes fade away after a while so it does not keep covering the
page.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from gradio.components import Component

from starvid import DEFAULT_BACKBONE
from starvid.backbones import BackboneDefaults
from starvid.parsing import MAX_PROMPT_CHARS
from starvid.ui.debugger import DebuggerSection, debugger_tab
from starvid.ui.form import APP_SETTINGS, initial_values, make_widget
from starvid.ui.text import ProgressView, examples_for, progress_html

# The prompt box takes a paste well over the limit, so nothing is cut silently mid-word: the
# counter turns red and Plan says how long it is (the parser refuses over MAX_PROMPT_CHARS).
MAX_PASTE_CHARS = 20 * MAX_PROMPT_CHARS

CSS = """
.sv-chips {display:flex; flex-wrap:wrap; gap:6px; align-items:center; min-height:28px}
.sv-chip {border:2px solid; border-radius:14px; padding:2px 10px; font-size:14px;
          display:inline-flex; align-items:center; gap:4px}
.sv-swatch {display:inline-block; width:12px; height:12px; border-radius:3px}
.sv-verb {border:1px solid #999; border-radius:10px; padding:0 6px; margin-left:2px;
          background:white; font-size:13px; color:#222}
.sv-none {border-color:#bbb; color:#5f5f5f}
.sv-dir {font-size:13px; color:#444}
.sv-scene {border-radius:10px; padding:1px 8px; background:#eee; color:#555; font-size:13px}
.sv-scene-label {color:#5f5f5f; font-size:13px; margin-left:8px}
.sv-unknown {background:#fff4e5; border-left:4px solid #f59e0b; padding:4px 8px; font-size:14px}
.sv-unknown mark {background:#fbbf24; padding:0 2px; border-radius:3px}
.sv-progress {position:relative; min-height:28px; background:#eee; border-radius:6px;
              overflow:hidden}
.sv-bar {position:absolute; left:0; top:0; bottom:0; background:#f59e0b66}
.sv-progress span {position:relative; padding:0 8px; line-height:28px; font-size:13px}
.sv-step {margin:0 !important; font-size:17px}
.sv-small, .sv-small * {font-size:12px !important; color:#4b4b4b}
#plan-row {align-items:flex-end}
.sv-stale {color:#a15c00; font-size:13px}
#prompt-count {font-size:12px; color:#4b5563; text-align:right}
#prompt-count .sv-over {color:#b91c1c; font-weight:600}
#prompt textarea::placeholder {font-style:italic; color:#6b7280}
/* help lines and slider ends at 7.7:1 on white (the theme's subdued grey read 1.9:1) */
:root, .gradio-container {--block-info-text-color:#52525b; --body-text-color-subdued:#52525b}
.info-text, [data-testid=min-value], [data-testid=max-value] {color:#52525b !important}
#canvas button[aria-label^="Rotate"] {display:none !important}
#notice [data-testid=status-tracker], #progress [data-testid=status-tracker]
  {display:none !important}
/* bottom right, over the settings rather than the canvas and its paths */
#notice {position:fixed; right:12px; bottom:10px; z-index:1000; width:min(540px, 92vw);
         display:none; pointer-events:none}
#notice:has(.sv-notice) {display:block}
#notice:has(.sv-close input:checked) {display:none}
.sv-notice {pointer-events:auto; position:relative; background:#eef6ff; border:1px solid #93c5fd;
            border-radius:8px; padding:4px 34px 4px 12px; box-shadow:0 2px 10px #0002;
            font-size:14px; max-height:25vh; overflow:auto; color:#1f2937}
.sv-notice details summary {cursor:pointer; color:#1d4ed8; font-size:13px}
.sv-notice.sv-note {animation:sv-fade 0.6s ease-in 12s forwards}
.sv-notice.sv-note:hover {animation-play-state:paused}
@keyframes sv-fade {to {opacity:0; visibility:hidden}}
.sv-notice.sv-error {background:#fff1f0; border-color:#f87171}
.sv-close {position:absolute; right:8px; top:2px; cursor:pointer; font-size:18px; color:#374151}
.sv-close input {position:absolute; opacity:0; width:1px; height:1px}
.gradio-container {padding-bottom:60px !important}
"""


@dataclass
class PromptSection:
    """Step 1: the model, the prompt, its examples, and what the parse and plan found."""

    backbone: Component
    backbone_info: Component
    prompt: Component
    counter: Component
    planner: Component
    plan_btn: Component
    examples: Component
    chips: Component
    unknown: Component
    keyframes: Component


@dataclass
class EditSection:
    """Step 2: the keyframe canvas and the tools that change the plan."""

    canvas: Component
    frame: Component
    trajectory: Component
    background: Component
    add_noun: Component
    add_btn: Component
    unpin_btn: Component
    export_btn: Component
    import_btn: Component
    plan_json: Component


@dataclass
class GenerateSection:
    """Step 3: Generate and Cancel, the progress, and one widget per exposed setting."""

    generate_btn: Component
    cancel_btn: Component
    progress: Component
    baseline: Component
    settings: dict[str, Component]
    tabs: Component


@dataclass
class InspectSection:
    """Step 4: the run's videos, heat maps, in-box shares, losses and files."""

    results_state: Component
    video_guided: Component
    video_baseline: Component
    video_previous: Component
    previous_info: Component
    word: Component
    heat_frame: Component
    heat_step: Component
    heatmap: Component
    inbox_kind: Component
    inbox_plot: Component
    loss_plot: Component
    downloads: Component
    debugger: DebuggerSection


@dataclass
class Studio:
    """Every section, the notice bar and the per-session states."""

    prompt: PromptSection
    edit: EditSection
    generate: GenerateSection
    inspect: InspectSection
    notice: Component
    editor: Component  # gr.State: EditorState | None
    live: Component  # gr.State: LiveRun | None (the last run)
    shown: Component  # gr.State: the frame the canvas shows
    active_backbone: Component  # gr.State: the backbone the settings' defaults came from


def _step(title: str) -> None:
    gr.Markdown(f"### {title}", elem_classes=["sv-step"])


def prompt_section(backbones: list[tuple[str, str]], info: str) -> PromptSection:
    """Step 1: backbone menu, prompt with its counter, planner, Plan, examples, chips."""
    _step("1 · Prompt")
    backbone = gr.Dropdown(
        backbones,
        value=DEFAULT_BACKBONE,
        label="Model (backbone)",
        info="the text-to-video model that draws the video; the examples follow it",
        allow_custom_value=True,
        elem_id="backbone",
    )
    backbone_info = gr.Markdown(info, elem_id="backbone-info", elem_classes=["sv-small"])
    prompt = gr.Textbox(
        label="Prompt",
        info="who does what, how many, where they go; Enter plans",
        placeholder="Describe the video here…",
        lines=1,
        max_lines=3,
        max_length=MAX_PASTE_CHARS,
        elem_id="prompt",
    )
    counter = gr.HTML(f"0 / {MAX_PROMPT_CHARS} characters", elem_id="prompt-count")
    with gr.Row(equal_height=False, elem_id="plan-row"):
        planner = gr.Dropdown(
            ["auto", "heuristic", "llm"],
            value="auto",
            label="Planner",
            info="auto: a small language model when installed; heuristic: rules",
            scale=3,
            elem_id="planner",
        )
        plan_btn = gr.Button("Plan", variant="primary", scale=2, elem_id="plan-btn")
    chips = gr.HTML(elem_id="chips", label="What the parse found")
    unknown = gr.HTML(elem_id="unknown-words")
    examples = gr.Dataset(
        components=[prompt],
        samples=[[p] for p in examples_for(DEFAULT_BACKBONE)],
        label="Examples for this model (click one to plan it)",
        elem_id="examples",
    )
    keyframes = gr.Markdown(elem_id="keyframes")
    return PromptSection(
        backbone,
        backbone_info,
        prompt,
        counter,
        planner,
        plan_btn,
        examples,
        chips,
        unknown,
        keyframes,
    )


def edit_section(frames: int) -> EditSection:
    """Step 2: the canvas (opens in move mode, no rotation), frame, background, tools."""
    from gradio_image_annotation import image_annotator

    _step("2 · Plan and edit")
    canvas = image_annotator(
        value=None,  # no boxes at mount would start the canvas in its box tool
        label="Boxes at the shown frame: drag to move, corners to resize",
        elem_id="canvas",
        sources=[],
        show_clear_button=False,
        show_download_button=False,
        show_share_button=False,
        image_type="numpy",
        show_remove_button=True,
        handles_cursor=True,
        box_min_size=4,
        box_thickness=3,
        box_selected_thickness=5,
        boxes_alpha=0.25,
    )
    frame = gr.Slider(
        0,
        frames - 1,
        value=0,
        step=1,
        label="Frame shown on the canvas",
        info="an edit pins a keyframe at this frame; the frames in between "
        "follow by linear interpolation",
        elem_id="frame",
    )
    # the paths right under the canvas and its frame: in view while a box is dragged
    trajectory = gr.Plot(label="Box centres over time", elem_id="trajectory")
    background = gr.Radio(
        [("none", "none"), ("guided frame", "guided"), ("baseline frame", "baseline")],
        value="guided",
        label="Under the boxes, after a run",
        elem_id="background",
        info="which video's frame the canvas shows behind the boxes",
    )
    with gr.Row(equal_height=True):
        add_noun = gr.Dropdown(
            [], label="New object", info="a subject of the prompt", elem_id="add-noun", scale=2
        )
        add_btn = gr.Button("Add object", elem_id="add-object", scale=1)
        unpin_btn = gr.Button("Unpin this frame", elem_id="unpin", scale=1)
    with gr.Row():
        export_btn = gr.DownloadButton("Export plan JSON", elem_id="export", size="sm")
        import_btn = gr.UploadButton(
            "Import plan JSON", file_types=[".json"], size="sm", elem_id="import"
        )
    with gr.Accordion("Plan JSON", open=False):
        plan_json = gr.Code(language="json", label="Plan JSON", elem_id="plan-json")
    return EditSection(
        canvas,
        frame,
        trajectory,
        background,
        add_noun,
        add_btn,
        unpin_btn,
        export_btn,
        import_btn,
        plan_json,
    )


def generate_section(defaults: BackboneDefaults) -> tuple[GenerateSection, InspectSection]:
    """Step 3: the buttons and the progress on top, then tabs: the settings first and step 4's
    results beside them, so a run's results sit right under the buttons that made them."""
    _step("3 · Generate  →  4 · Inspect")
    with gr.Row(equal_height=True):
        generate_btn = gr.Button("Generate", variant="primary", elem_id="generate", scale=3)
        cancel_btn = gr.Button("Cancel", variant="stop", elem_id="cancel", scale=1)
    progress = gr.HTML(progress_html(ProgressView("idle")), elem_id="progress")
    values = initial_values(defaults)
    settings: dict[str, Component] = {}
    with gr.Tabs(elem_id="run-tabs") as tabs:
        with gr.Tab("Settings", id="settings"):
            baseline = gr.Checkbox(
                True,
                label="Baseline too",
                elem_id="baseline",
                info="also run without guidance, same seed, to compare",
            )
            for name in [n for n, w in APP_SETTINGS.items() if w.basic]:
                settings[name] = make_widget(name, values[name])
            with gr.Accordion("More settings", open=False, elem_id="more-settings"):
                for name in [n for n, w in APP_SETTINGS.items() if not w.basic]:
                    settings[name] = make_widget(name, values[name])
        inspect = inspect_section(defaults)
    section = GenerateSection(generate_btn, cancel_btn, progress, baseline, settings, tabs)
    return section, inspect


def inspect_section(defaults: BackboneDefaults) -> InspectSection:
    """Step 4 (tabs beside the settings): videos, attention, in-box share, losses, files."""
    with gr.Tab("Videos", id="videos"):
        results_state = gr.HTML(elem_id="results-state")
        with gr.Row():
            video_guided = gr.Video(
                label="Guided (StarVid)",
                elem_id="video-guided",
                autoplay=True,
                loop=True,
                height=300,
            )
            video_baseline = gr.Video(
                label="Baseline (same seed)",
                elem_id="video-baseline",
                autoplay=True,
                loop=True,
                height=300,
            )
        # the run before, so that two settings can be compared side by side
        with gr.Row(equal_height=False):
            video_previous = gr.Video(
                label="Previous run (guided)",
                elem_id="video-previous",
                autoplay=True,
                loop=True,
                height=220,
            )
            previous_info = gr.Markdown(
                "The run before the last one shows here, to compare settings.",
                elem_id="previous-info",
                elem_classes=["sv-small"],
            )
    with gr.Tab("Attention", id="attention"):
        with gr.Row():
            word = gr.Dropdown(
                [], label="Word", info="a noun or a verb of the prompt", elem_id="word"
            )
            heat_frame = gr.Slider(
                0,
                defaults.frames - 1,
                value=0,
                step=1,
                label="Frame",
                elem_id="heat-frame",
                info="which video frame",
            )
            heat_step = gr.Slider(
                1,
                defaults.steps,
                value=defaults.steps,
                step=1,
                label="Step",
                elem_id="heat-step",
                info="after which denoising step",
            )
        heatmap = gr.Plot(label="Cross-attention (guided | baseline)", elem_id="heatmap")
        debugger = debugger_tab()  # every token, layer and step (record_attention=full)
    with gr.Tab("In-box", id="inbox"):
        inbox_kind = gr.Radio(
            [
                ("end of the guidance window", "inbox_share"),
                ("last denoising steps", "inbox_share_final"),
            ],
            value="inbox_share",
            label="Measured at",
            elem_id="inbox-kind",
            info="the share of each noun's attention inside its own boxes, per frame",
        )
        inbox_plot = gr.Plot(label="In-box attention share", elem_id="inbox")
    with gr.Tab("Losses", id="losses"):
        loss_plot = gr.Plot(label="Guidance losses", elem_id="losses")
    with gr.Tab("Files", id="files"):
        downloads = gr.File(
            label="The run's folder (as the CLI's --out writes it)",
            file_count="multiple",
            elem_id="downloads",
        )
    return InspectSection(
        results_state,
        video_guided,
        video_baseline,
        video_previous,
        previous_info,
        word,
        heat_frame,
        heat_step,
        heatmap,
        inbox_kind,
        inbox_plot,
        loss_plot,
        downloads,
        debugger,
    )
