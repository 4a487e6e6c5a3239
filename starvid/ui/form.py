"""Step 3's settings form: one widget per generation setting the app exposes, built from the
settings schema.

``APP_SETTINGS`` names the widgets (label, kind, range); each widget's one-line ``info`` is the
field's ``description`` in ``GenerationSettings``, the same line the CLI's ``--help`` prints.
Every schema field is either here or in ``CLI_ONLY``, so a new setting is one schema field plus
one line here (a test holds both lists to the schema). The generate handler turns the widgets'
values back into ``GenerationSettings`` (``settings_from_values``).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

import gradio as gr

from starvid.backbones import BackboneDefaults
from starvid.errors import StarVidError
from starvid.settings import GenerationSettings, default_guidance_steps, make_settings


@dataclass(frozen=True)
class Widget:
    """How one setting is shown: its label, kind and range; ``basic`` ones are always in view,
    the others under "More settings"."""

    label: str
    kind: str  # "number", "slider", "checkbox" or "choice"
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    basic: bool = False


APP_SETTINGS: dict[str, Widget] = {
    "step_size": Widget("Guidance strength (step size)", "slider", 0, 1, 0.01, basic=True),
    "spatial_weight": Widget("Spatial weight", "slider", 0, 5, 0.1, basic=True),
    "syntax_weight": Widget("Syntax weight", "slider", 0, 5, 0.05, basic=True),
    "steps": Widget("Denoising steps", "number", 1, 1000, 1, basic=True),
    "seed": Widget("Seed", "number", 0, 2**31 - 1, 1, basic=True),
    "frames": Widget("Frames", "number", 1, 512, 1, basic=True),
    "guidance_steps": Widget("Guidance window (first N steps)", "number", 0, 1000, 1),
    "iterations": Widget("Updates per guided step", "slider", 0, 10, 1),
    "cfg_scale": Widget("Prompt strength (CFG scale)", "number", 0, 100, 0.5),
    "plan_kind": Widget("Boxes guide (plan kind)", "choice"),
    "adjacent_frames": Widget("Syntax loss: neighbouring frames k", "slider", 0, 7, 1),
    "normalize_grad": Widget("Update normalization", "choice"),
    "distance": Widget("Syntax loss: map distance", "choice"),
    "temperature": Widget("Syntax loss: temperature", "number", 0.01, 100, 0.05),
    "spatial_words": Widget("Spatial loss pulls", "choice"),
    "checkpointing": Widget("Save memory (slower guidance)", "checkbox"),
    "record_attention": Widget("Attention debugger: record", "choice"),
}

# Settings only the command line sets: sizes fixed by the backbone, and knobs for experiments.
CLI_ONLY = (
    "height",
    "width",
    "step_schedule",
    "spatial_form",
    "syntax_form",
    "syntax_margin",
    "syntax_words",
    "max_grad_norm",
    "record_layers",
    "final_fraction",
    "stop_early",
)

# Settings whose default is the backbone's: they follow a backbone change unless the user
# changed them.
BACKBONE_SETTINGS = ("frames", "steps", "cfg_scale", "step_size", "guidance_steps", "checkpointing")


def backbone_values(d: BackboneDefaults) -> dict[str, Any]:
    """The backbone-dependent settings' values for a backbone's defaults."""
    return {
        "frames": d.frames,
        "steps": d.steps,
        "cfg_scale": d.cfg_scale,
        "step_size": d.step_size,
        "guidance_steps": default_guidance_steps(d.steps),
        "checkpointing": d.checkpointing,
    }


def initial_values(d: BackboneDefaults) -> dict[str, Any]:
    """Every exposed setting's starting value: the schema's default or the backbone's."""
    values = {
        name: GenerationSettings.model_fields[name].default
        for name in APP_SETTINGS
        if name not in BACKBONE_SETTINGS
    }
    return values | backbone_values(d)


def follow_backbone(
    values: dict[str, Any], old: BackboneDefaults, new: BackboneDefaults
) -> dict[str, Any]:
    """The settings to change on a backbone switch: those still at the old backbone's default
    take the new one's; a value the user changed stays."""
    before, after = backbone_values(old), backbone_values(new)
    return {
        name: after[name]
        for name in BACKBONE_SETTINGS
        if _same(values.get(name), before[name]) and not _same(before[name], after[name])
    }


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b
    try:
        return abs(float(a) - float(b)) < 1e-9
    except (TypeError, ValueError):
        return a == b


def _choices(name: str) -> list[str]:
    return list(typing.get_args(GenerationSettings.model_fields[name].annotation))


def make_widget(name: str, value: Any) -> gr.components.Component:
    """The widget of one setting, its ``info`` the schema's one-line description."""
    spec = APP_SETTINGS[name]
    field = GenerationSettings.model_fields[name]
    common = {"label": spec.label, "info": field.description, "elem_id": name.replace("_", "-")}
    if spec.kind == "checkbox":
        return gr.Checkbox(bool(value), **common)
    if spec.kind == "choice":
        return gr.Dropdown(_choices(name), value=value, **common)
    if spec.kind == "slider":
        return gr.Slider(spec.minimum, spec.maximum, value=value, step=spec.step, **common)
    precision = 0 if spec.step == 1 else None
    return gr.Number(
        value,
        minimum=spec.minimum,
        maximum=spec.maximum,
        step=spec.step,
        precision=precision,
        **common,
    )


def settings_from_values(values: dict[str, Any]) -> GenerationSettings:
    """Validated settings from the widgets' values (one line naming a bad or empty one)."""
    empty = [APP_SETTINGS[k].label for k, v in values.items() if v is None or v == ""]
    if empty:
        raise StarVidError(f"fill in the generation setting(s): {', '.join(empty)}")
    typed = {}
    for name, value in values.items():
        kind = GenerationSettings.model_fields[name].annotation
        typed[name] = int(value) if _is_int(kind) and not isinstance(value, bool) else value
    return make_settings(typed)


def _is_int(annotation) -> bool:
    args = typing.get_args(annotation)
    return annotation is int or (int in args and float not in args)
