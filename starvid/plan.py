"""The Plan: one box per object instance per frame, validated, JSON round-trippable.

Coordinates are fractions of width and height, origin top-left, ``[x0, y0, x1, y1]`` with
``x0 < x1`` and ``y0 < y1`` inside ``[0, 1]``. An object may carry ``keyframes`` (frame -> box):
its boxes are then the linear interpolation between them, held constant outside (loading
derives them when only keyframes are given, and checks them when both are). Keyframes are what
a user pinned in the editor: a plan keeps them through saving, loading, resampling and editing.
"""

from __future__ import annotations

import json
from pathlib import Path
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

from starvid.errors import StarVidError, first_problem

PLAN_VERSION = 1
MAX_FRAMES = 512
MAX_OBJECTS = 48  # the planners lay out at most 12 instances a subject
MAX_PLAN_BYTES = 5 * 2**20  # 512 frames x 48 objects of boxes is about 2 MB of JSON
MIN_BOX_SIZE = 1e-3
KEYFRAME_TOLERANCE = 0.002  # how far boxes may stray from their keyframes' interpolation

BoxTuple = tuple[float, float, float, float]


def _check_box(box: BoxTuple) -> BoxTuple:
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


Box = Annotated[BoxTuple, AfterValidator(_check_box)]
"""``[x0, y0, x1, y1]`` as fractions of the frame, validated."""


class PlannedObject(BaseModel):
    """One object instance ("cat-2") with its box in every frame and its pinned keyframes."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    noun: str = Field(min_length=1, max_length=64)
    subject: int = Field(ge=0, le=1000, description="index into the parse's subjects")
    verbs: list[str] = Field(default_factory=list, max_length=32)
    boxes: list[Box] | None = Field(None, max_length=MAX_FRAMES)
    keyframes: dict[int, Box] | None = Field(None, max_length=MAX_FRAMES)

    @model_validator(mode="after")
    def _has_boxes_or_keyframes(self) -> PlannedObject:
        if self.boxes is None and not self.keyframes:
            raise ValueError("needs 'boxes' (one per frame) or 'keyframes'")
        return self

    def center_path(self) -> np.ndarray:
        """Box centres per frame, shape ``(frames, 2)`` as ``(x, y)`` fractions."""
        b = np.asarray(self.boxes, dtype=float)
        return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)

    def keyframes_or_fit(self) -> dict[int, BoxTuple]:
        """The pinned keyframes, or the fewest keyframes that reproduce the boxes (a planner's
        path, before any edit)."""
        if self.keyframes:
            return dict(sorted(self.keyframes.items()))
        return fit_keyframes(self.boxes)


class Plan(BaseModel):
    """A validated layout: every object has exactly ``frames`` boxes after loading."""

    model_config = ConfigDict(extra="forbid")

    version: int = PLAN_VERSION
    frames: int = Field(ge=1, le=MAX_FRAMES)
    objects: list[PlannedObject] = Field(min_length=1, max_length=MAX_OBJECTS)
    planner: str = Field("heuristic", max_length=500)
    prompt: str | None = Field(None, max_length=5000)
    warnings: list[str] = Field(default_factory=list, max_length=100)

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
            if obj.keyframes:
                derived = interpolate_keyframes(obj.keyframes, self.frames, where)
                if obj.boxes is None:
                    obj.boxes = derived
                else:
                    _check_agrees(obj.boxes, derived, self.frames, where)
                obj.keyframes = dict(sorted(obj.keyframes.items()))
            if len(obj.boxes) != self.frames:
                raise ValueError(
                    f"{where}.boxes: has {len(obj.boxes)} boxes but the plan has "
                    f"{self.frames} frames"
                )
        return self

    # -- reading ----------------------------------------------------------------------------

    def boxes_array(self) -> np.ndarray:
        """All boxes as an array of shape ``(objects, frames, 4)``."""
        return np.asarray([obj.boxes for obj in self.objects], dtype=float)

    def object(self, object_id: str) -> PlannedObject:
        """The object with this id."""
        for obj in self.objects:
            if obj.id == object_id:
                return obj
        raise StarVidError(f"plan has no object '{object_id}'")

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON object (empty optional fields left out; keyframes kept)."""
        return self.model_dump(exclude_none=True)

    def to_json(self, indent: int | None = None) -> str:
        """Serialize to the contract's JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    # -- new plans from this one --------------------------------------------------------------

    def resample(self, frames: int) -> Plan:
        """The same trajectories over another number of frames (linear in time); keyframes move
        to the nearest frame of the new timeline."""
        if frames < 1 or frames > MAX_FRAMES:
            raise StarVidError(f"frames must be between 1 and {MAX_FRAMES}, got {frames}")
        if frames == self.frames:
            return self
        data = self.to_dict()
        data["frames"] = frames
        old = np.linspace(0.0, 1.0, self.frames) if self.frames > 1 else np.zeros(1)
        new = np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)
        scale = (frames - 1) / (self.frames - 1) if self.frames > 1 else 0.0
        for obj, src in zip(data["objects"], self.objects, strict=True):
            if src.keyframes:
                obj.pop("boxes")
                obj["keyframes"] = {round(k * scale): box for k, box in src.keyframes.items()}
            else:
                b = np.asarray(src.boxes, dtype=float)
                obj["boxes"] = [[float(np.interp(t, old, b[:, k])) for k in range(4)] for t in new]
        return Plan.model_validate(data)

    def pin(self, object_id: str, frame: int, box: BoxTuple) -> Plan:
        """A copy where ``object_id`` has a keyframe ``box`` at ``frame`` (its other keyframes,
        or the fitted keyframes of a planner's path, stay)."""
        if not 0 <= frame < self.frames:
            raise StarVidError(f"frame {frame} is outside 0..{self.frames - 1}")
        keys = self.object(object_id).keyframes_or_fit()
        keys[int(frame)] = tuple(float(v) for v in box)
        return self._with_keyframes(object_id, keys)

    def unpin(self, object_id: str, frame: int) -> Plan:
        """A copy without the keyframe of ``object_id`` at ``frame`` (never its last one)."""
        keys = self.object(object_id).keyframes_or_fit()
        if frame not in keys or len(keys) < 2:
            return self
        del keys[frame]
        return self._with_keyframes(object_id, keys)

    def layout_only(self) -> Plan:
        """A copy where every object's box is held at its first-frame box (one keyframe at
        frame 0): the layout without the motion, so guidance places the subjects and leaves
        their motion to the model and the verbs."""
        data = self.to_dict()
        for obj, src in zip(data["objects"], self.objects, strict=True):
            obj.pop("boxes", None)
            obj["keyframes"] = {0: tuple(src.boxes[0])}
        data["planner"] = f"{self.planner} (layout only)"[:500]
        return validate_plan(data)

    def _with_keyframes(self, object_id: str, keys: dict[int, BoxTuple]) -> Plan:
        data = self.to_dict()
        for obj in data["objects"]:
            if obj["id"] == object_id:
                obj.pop("boxes", None)
                obj["keyframes"] = keys
        return validate_plan(data)


def interpolate_keyframes(
    keyframes: dict[int, BoxTuple] | None, frames: int, where: str = ""
) -> list[BoxTuple]:
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


def _check_agrees(boxes, derived, frames: int, where: str) -> None:
    if len(boxes) != frames:
        return  # the length check names this
    err = np.abs(np.asarray(boxes, dtype=float) - np.asarray(derived, dtype=float)).max(axis=1)
    worst = int(err.argmax())
    if err[worst] > KEYFRAME_TOLERANCE:
        raise ValueError(
            f"{where}.boxes: frame {worst} disagrees with the object's keyframes (by "
            f"{err[worst]:.3f}); give keyframes or boxes, or both in agreement"
        )


def fit_keyframes(boxes, tol: float = KEYFRAME_TOLERANCE) -> dict[int, BoxTuple]:
    """Fewest keyframes whose linear interpolation stays within ``tol`` of every box.

    Douglas-Peucker over time: start with the first and last frame, then pin the frame that
    interpolation misses most until none is off by more than ``tol`` (any coordinate).
    """
    b = np.asarray(boxes, dtype=float)
    n = len(b)
    keep = {0, n - 1}
    t = np.arange(n)
    while True:
        keys = sorted(keep)
        approx = np.stack([np.interp(t, keys, b[keys, c]) for c in range(4)], axis=1)
        err = np.abs(approx - b).max(axis=1)
        worst = int(err.argmax())
        if err[worst] <= tol:
            return {k: tuple(float(v) for v in b[k]) for k in keys}
        keep.add(worst)


def _format_validation_error(err: ValidationError) -> str:
    loc, msg = first_problem(err)
    more = f" (and {err.error_count() - 1} more problems)" if err.error_count() > 1 else ""
    return f"invalid plan: {loc + ': ' if loc else ''}{msg}{more}"


def validate_plan(data: dict[str, Any]) -> Plan:
    """A Plan from a dict; errors name the offending field in one line."""
    if not isinstance(data, dict):
        raise StarVidError("invalid plan: expected a JSON object with 'frames' and 'objects'")
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise StarVidError(_format_validation_error(exc)) from exc


def load_plan(text: str | bytes) -> Plan:
    """Parse and validate a plan from JSON text; errors name the offending field."""
    if len(text) > MAX_PLAN_BYTES:
        raise StarVidError(f"invalid plan: larger than {MAX_PLAN_BYTES // 2**20} MB")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StarVidError("invalid plan: the file is not UTF-8 text") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StarVidError(f"invalid plan: not JSON ({exc.msg} at line {exc.lineno})") from exc
    except (ValueError, RecursionError) as exc:  # 5,000-digit numbers, deep nesting
        raise StarVidError(f"invalid plan: not a plan's JSON ({str(exc)[:80]})") from exc
    return validate_plan(data)


def read_plan_file(path: str | Path) -> Plan:
    """Load a plan from a JSON file (at most MAX_PLAN_BYTES)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise StarVidError(f"cannot read plan file {path}: {exc.strerror}") from exc
    return load_plan(data)
