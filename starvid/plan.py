"""The Plan: one box per object instance per frame, validated, JSON round-trippable.

Coordinates are fractions of width and height, origin top-left, ``[x0, y0, x1, y1]`` with
``x0 < x1`` and ``y0 < y1`` inside ``[0, 1]``. A plan may carry ``keyframes`` per object instead
of ``boxes``; loading expands them to one box per frame by linear interpolation.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from starvid.errors import StarVidError

PLAN_VERSION = 1
MAX_FRAMES = 512
MIN_BOX_SIZE = 1e-3


def _check_box(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    for name, value in zip(("x0", "y0", "x1", "y1"), box, strict=True):
        if not np.isfinite(value):
            raise ValueError(f"{name} is not a finite number ({value})")
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}={value:g} is outside [0, 1]")
    if not x0 + MIN_BOX_SIZE <= x1:
        raise ValueError(f"x0={x0:g} must be smaller than x1={x1:g} (zero or negative width)")
    if not y0 + MIN_BOX_SIZE <= y1:
        raise ValueError(f"y0={y0:g} must be smaller than y1={y1:g} (zero or negative height)")
    return (float(x0), float(y0), float(x1), float(y1))


Box = Annotated[tuple[float, float, float, float], AfterValidator(_check_box)]
"""``[x0, y0, x1, y1]`` as fractions of the frame, validated."""


class PlannedObject(BaseModel):
    """One object instance ("cat-2") with its box in every frame."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    noun: str = Field(min_length=1)
    subject: int = Field(ge=0, description="index into the parse's subjects")
    verbs: list[str] = Field(default_factory=list)
    boxes: list[Box] | None = None
    keyframes: dict[int, Box] | None = None

    @model_validator(mode="after")
    def _has_boxes_or_keyframes(self) -> PlannedObject:
        if self.boxes is None and not self.keyframes:
            raise ValueError("needs 'boxes' (one per frame) or 'keyframes'")
        return self

    def center_path(self) -> np.ndarray:
        """Box centres per frame, shape ``(frames, 2)`` as ``(x, y)`` fractions."""
        b = np.asarray(self.boxes, dtype=float)
        return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)


class Plan(BaseModel):
    """A validated layout: every object has exactly ``frames`` boxes after loading."""

    model_config = ConfigDict(extra="forbid")

    version: int = PLAN_VERSION
    frames: int = Field(ge=1, le=MAX_FRAMES)
    objects: list[PlannedObject] = Field(min_length=1)
    planner: str = "heuristic"
    prompt: str | None = None
    warnings: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _expand_and_check(self) -> Plan:
        if self.version != PLAN_VERSION:
            raise ValueError(f"version {self.version} is not supported (expected {PLAN_VERSION})")
        seen: set[str] = set()
        for i, obj in enumerate(self.objects):
            where = f"objects.{i} ({obj.id})"
            if obj.id in seen:
                raise ValueError(f"{where}: id '{obj.id}' is used twice")
            seen.add(obj.id)
            if obj.boxes is None:
                obj.boxes = interpolate_keyframes(obj.keyframes, self.frames, where)
                obj.keyframes = None
            elif obj.keyframes:
                raise ValueError(f"{where}: give either 'boxes' or 'keyframes', not both")
            if len(obj.boxes) != self.frames:
                raise ValueError(
                    f"{where}.boxes: has {len(obj.boxes)} boxes but the plan has "
                    f"{self.frames} frames"
                )
        return self

    # -- convenience -------------------------------------------------------------------------

    def boxes_array(self) -> np.ndarray:
        """All boxes as an array of shape ``(objects, frames, 4)``."""
        return np.asarray([obj.boxes for obj in self.objects], dtype=float)

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON object (empty optional fields left out)."""
        return self.model_dump(exclude_none=True, exclude={"objects": {"__all__": {"keyframes"}}})

    def to_json(self, indent: int | None = None) -> str:
        """Serialize to the contract's JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def resample(self, frames: int) -> Plan:
        """The same trajectories over another number of frames (linear in time)."""
        if frames < 1 or frames > MAX_FRAMES:
            raise StarVidError(f"frames must be between 1 and {MAX_FRAMES}, got {frames}")
        data = self.to_dict()
        data["frames"] = frames
        old = np.linspace(0.0, 1.0, self.frames) if self.frames > 1 else np.zeros(1)
        new = np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)
        for obj, src in zip(data["objects"], self.objects, strict=True):
            b = np.asarray(src.boxes, dtype=float)
            obj["boxes"] = [[float(np.interp(t, old, b[:, k])) for k in range(4)] for t in new]
        return Plan.model_validate(data)

    def with_boxes(self, object_id: str, boxes: list[list[float]] | np.ndarray) -> Plan:
        """A copy with one object's per-frame boxes replaced (validated)."""
        data = self.to_dict()
        for obj in data["objects"]:
            if obj["id"] == object_id:
                obj["boxes"] = [list(map(float, b)) for b in boxes]
                return Plan.model_validate(data)
        raise StarVidError(f"plan has no object '{object_id}'")


def interpolate_keyframes(
    keyframes: dict[int, tuple[float, float, float, float]] | None, frames: int, where: str = ""
) -> list[tuple[float, float, float, float]]:
    """Expand ``{frame: box}`` to one box per frame, held constant outside the keyframes."""
    if not keyframes:
        raise ValueError(f"{where}: 'keyframes' is empty")
    bad = [k for k in keyframes if not 0 <= k < frames]
    if bad:
        raise ValueError(f"{where}.keyframes: frame {bad[0]} is outside 0..{frames - 1}")
    keys = sorted(keyframes)
    values = np.asarray([keyframes[k] for k in keys], dtype=float)
    t = np.arange(frames)
    cols = [np.interp(t, keys, values[:, c]) for c in range(4)]
    return [tuple(float(col[f]) for col in cols) for f in range(frames)]


def _format_validation_error(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    more = f" (and {err.error_count() - 1} more problems)" if err.error_count() > 1 else ""
    return f"invalid plan: {loc + ': ' if loc else ''}{msg}{more}"


def load_plan(source: str | bytes | dict[str, Any]) -> Plan:
    """Parse and validate a plan from JSON text or a dict; errors name the offending field."""
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StarVidError("invalid plan: the file is not UTF-8 text") from exc
    if isinstance(source, str):
        try:
            source = json.loads(source)
        except json.JSONDecodeError as exc:
            raise StarVidError(f"invalid plan: not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(source, dict):
        raise StarVidError("invalid plan: expected a JSON object with 'frames' and 'objects'")
    try:
        return Plan.model_validate(source)
    except ValidationError as exc:
        raise StarVidError(_format_validation_error(exc)) from exc


def read_plan_file(path: str) -> Plan:
    """Load a plan from a JSON file."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise StarVidError(f"cannot read plan file {path}: {exc.strerror}") from exc
    return load_plan(data)
