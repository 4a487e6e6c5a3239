"""Generation settings: one schema for the engine, the command line and the app.

``GenerationSettings`` is the single list of knobs. Each field's ``description`` is its one-line
help: the CLI builds ``--field-name`` flags from the fields (``add_setting_flags``) and the app
uses the same line as the widget's ``info``, so a new setting is one field here plus one widget.
A ``None`` field takes the backbone's default when the settings are resolved against a backbone
(``resolve``), once, at the edge; the engine receives ``ResolvedSettings`` only.
"""

from __future__ import annotations

import argparse
import math
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from starvid.errors import StarVidError, first_problem
from starvid.plan import MAX_FRAMES


def default_guidance_steps(steps: int) -> int:
    """The default guidance window: the first quarter of the steps (as the paper), at least 1."""
    return max(1, math.ceil(0.25 * steps))


class GenerationSettings(BaseModel):
    """Knobs of one generation. ``None`` means: the backbone's default (see ``resolve``)."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, ge=0, le=2**63 - 1, description="random seed: same seed, same noise")
    frames: int | None = Field(
        None, ge=1, le=MAX_FRAMES, description="video frames (default: the backbone's)"
    )
    height: int | None = Field(
        None, ge=8, le=4096, description="video height in pixels (default: the backbone's)"
    )
    width: int | None = Field(
        None, ge=8, le=4096, description="video width in pixels (default: the backbone's)"
    )
    steps: int | None = Field(
        None, ge=1, le=1000, description="denoising steps (default: the backbone's)"
    )
    cfg_scale: float | None = Field(
        None,
        ge=0.0,
        le=100.0,
        description="classifier-free guidance: how strongly the video follows the prompt",
    )
    guidance_steps: int | None = Field(
        None,
        ge=0,
        description="StarVid guides the first N denoising steps (default: the first quarter)",
    )
    iterations: int = Field(
        3, ge=0, le=50, description="gradient updates of the latents in each guided step"
    )
    step_size: float | None = Field(
        None,
        ge=0.0,
        le=100.0,
        description="overall guidance strength: the size of each latent update (0: no guidance); "
        "the weights below scale each term within it",
    )
    spatial_weight: float = Field(
        1.0,
        ge=0.0,
        le=100.0,
        description="the spatial term's own pull of each noun's attention into its boxes "
        "(counts, layout): with per_term normalization 2 pulls twice as hard, 0 turns it off",
    )
    syntax_weight: float = Field(
        0.1,
        ge=0.0,
        le=100.0,
        description="the syntax term's own pull of each verb's attention toward its own noun "
        "and away from the others (action binding): with per_term normalization 0 turns it off",
    )
    normalize_grad: Literal["per_term", "rms", "none"] = Field(
        "per_term",
        description="update size: 'per_term' brings each term's gradient to unit RMS before "
        "the weights at a step's first update, which sets the size of its others (a weight "
        "scales its own pull); 'rms' normalizes the weighted sum (only the weights' ratio "
        "matters); 'none' uses the raw gradient",
    )
    step_schedule: Literal["sqrt_one_minus_alpha", "constant"] = Field(
        "sqrt_one_minus_alpha",
        description="scale each update by the noise level sqrt(1 - alpha_bar) or not",
    )
    spatial_form: Literal["mass", "topk"] = Field(
        "mass",
        description="spatial loss: share of attention mass in the box, or top-k energy inside "
        "against outside (LLM-grounded video diffusion)",
    )
    spatial_words: Literal["noun", "phrase"] = Field(
        "noun",
        description="what the spatial loss pulls into the boxes: the head noun (the paper) or "
        "the noun with its adjectives ('red' in 'two red circles')",
    )
    syntax_words: Literal["verb", "phrase"] = Field(
        "verb",
        description="what the syntax loss binds to each noun: the verb alone (the paper) or the "
        "verb with its motion words ('moving left', 'staying still': the verb alone may not say "
        "which way)",
    )
    plan_kind: Literal["trajectory", "layout"] = Field(
        "trajectory",
        description="what the boxes guide: 'trajectory' follows the planned paths (the spatial "
        "term carries the motion); 'layout' holds each box where it starts (motion left to the "
        "model and the verbs)",
    )
    adjacent_frames: int = Field(
        1,
        ge=0,
        le=64,
        description="syntax loss: a verb's map at frame f is compared with its noun's maps at "
        "frames f-k..f+k",
    )
    distance: Literal["kl", "cosine"] = Field(
        "kl", description="syntax loss: distance between attention maps (KL, as the paper)"
    )
    temperature: float = Field(
        0.5, gt=0.0, le=100.0, description="syntax loss: InfoNCE temperature"
    )
    syntax_form: Literal["infonce", "hinge"] = Field(
        "infonce",
        description="syntax loss: 'infonce' (the paper's; saturates once a verb sits on its "
        "noun) or 'hinge' (the distance to the own noun plus max(0, margin + own - other) per "
        "other noun: keeps pulling toward the own noun)",
    )
    syntax_margin: float = Field(
        1.0, ge=0.0, le=100.0, description="syntax loss, hinge form: the margin in distance"
    )
    max_grad_norm: float | None = Field(
        None, gt=0.0, description="clip the gradient's L2 norm before each update"
    )
    record_layers: str | None = Field(
        None,
        max_length=500,
        description="cross-attention layers the losses read: low, mid, all or name prefixes "
        "(default: the backbone's)",
    )
    record_attention: Literal["needed", "full", "full_heads"] = Field(
        "needed",
        description="attention debugger: 'needed' records only the words and layers the "
        "losses read; 'full' every token of the prompt at every layer and step; "
        "'full_heads' each head too (costs: docs/results.md)",
    )
    checkpointing: bool | None = Field(
        None,
        description="save memory: gradient updates recompute the U-Net's layers instead of "
        "keeping their activations (about 1.5x the time per update)",
    )
    final_fraction: float = Field(
        0.2,
        gt=0.0,
        le=1.0,
        description="inbox_share_final reads the maps of this last fraction of the steps",
    )
    stop_early: bool = Field(
        True,
        description="gradient updates stop the U-Net after the last recorded layer (same "
        "gradient, less work); off runs the whole U-Net, as a reference for cost",
    )

    def resolve(self, backbone) -> ResolvedSettings:
        """Every ``None`` filled from the backbone's defaults; sizes checked against the model.

        Args:
            backbone: a pipeline (its ``defaults``, ``vae_scale_factor`` and U-Net config).

        Returns:
            ``ResolvedSettings``; a ``StarVidError`` when height or width do not fit the model.
        """
        d = backbone.defaults
        steps = self.steps or d.steps
        data = self.model_dump()
        data.update(
            steps=steps,
            guidance_steps=(
                default_guidance_steps(steps)
                if self.guidance_steps is None
                else self.guidance_steps
            ),
            cfg_scale=d.cfg_scale if self.cfg_scale is None else self.cfg_scale,
            step_size=d.step_size if self.step_size is None else self.step_size,
            record_layers=self.record_layers or d.record_layers,
            checkpointing=d.checkpointing if self.checkpointing is None else self.checkpointing,
            frames=self.frames or d.frames,
            height=self.height or d.height,
            width=self.width or d.width,
        )
        resolved = ResolvedSettings.model_validate(data)
        multiple = backbone.vae_scale_factor * 2 ** (
            len(backbone.unet.config.block_out_channels) - 1
        )
        for name in ("height", "width"):
            if getattr(resolved, name) % multiple:
                raise StarVidError(
                    f"{name}={getattr(resolved, name)} must be a multiple of {multiple} for "
                    "this backbone"
                )
        return resolved


class ResolvedSettings(GenerationSettings):
    """Settings with every backbone default filled in: what the denoising loop runs with."""

    frames: int = Field(ge=1, le=MAX_FRAMES)
    height: int = Field(ge=8, le=4096)
    width: int = Field(ge=8, le=4096)
    steps: int = Field(ge=1, le=1000)
    cfg_scale: float = Field(ge=0.0, le=100.0)
    guidance_steps: int = Field(ge=0)
    step_size: float = Field(ge=0.0, le=100.0)
    record_layers: str
    checkpointing: bool

    def resolve(self, backbone) -> ResolvedSettings:  # noqa: D102 - already resolved
        return self


def make_settings(data: dict[str, Any]) -> GenerationSettings:
    """Validated settings from plain values.

    Args:
        data: setting name -> value; ``None`` values are left to the defaults.

    Returns:
        ``GenerationSettings``; a ``StarVidError`` naming the setting in one line otherwise.
    """
    try:
        return GenerationSettings.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        raise StarVidError(settings_error(exc)) from exc


def settings_error(exc: ValidationError) -> str:
    """One line for the first problem of a settings validation error."""
    where, what = first_problem(exc)
    return f"invalid setting {where or 'settings'}: {what}"


# -- the command line's flags, derived from the schema ----------------------------------------


def flag_name(field: str) -> str:
    """The CLI flag of a setting: ``spatial_weight`` -> ``--spatial-weight``."""
    return "--" + field.replace("_", "-")


def _flag_type(annotation) -> tuple[type | None, tuple | None]:
    """(scalar type, choices) of a field annotation such as ``int | None`` or a Literal."""
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        inner = [a for a in args if a is not type(None)]
        return _flag_type(inner[0])
    if typing.get_origin(annotation) is Literal:
        return type(args[0]), tuple(args)
    return annotation, None


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per setting (booleans as ``--flag/--no-flag``), all defaulting to None so
    that unset flags leave the setting to a report or the backbone."""
    group = parser.add_argument_group("generation settings")
    for name, field in GenerationSettings.model_fields.items():
        kind, choices = _flag_type(field.annotation)
        kwargs: dict[str, Any] = {"default": None, "dest": name, "help": field.description}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = kind
            if choices:
                kwargs["choices"] = choices
            kwargs["metavar"] = name.upper() if not choices else None
        group.add_argument(flag_name(name), **kwargs)


def settings_from_flags(args: argparse.Namespace, base: GenerationSettings | None = None):
    """Settings from parsed flags over ``base`` (e.g. a report's settings); flags win."""
    data = base.model_dump(exclude_unset=True) if base is not None else {}
    for name in GenerationSettings.model_fields:
        value = getattr(args, name, None)
        if value is not None:
            data[name] = value
    try:
        return GenerationSettings.model_validate(data)
    except ValidationError as exc:
        where, what = first_problem(exc)
        name = where.split(".")[0]
        flag = flag_name(name) if name in GenerationSettings.model_fields else "settings"
        raise StarVidError(f"{flag}: {what}") from exc
