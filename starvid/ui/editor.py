"""The Studio's editor: a typed state and pure functions over it, testable without a browser.

``EditorState`` holds what the user is editing: the prompt as planned, its parse (made once, at
plan time, and reused by the run), the ``Plan`` itself with its keyframes, and the video size
(for the canvas's aspect). Edits go through the plan's own methods (``Plan.pin``, ``unpin``,
``resample``): a moved box pins a keyframe, frames in between follow by linear interpolation,
and pinned keyframes are never refitted. The state remembers which keyframes the user pinned
(``pins``), so unpinning never touches a planner's own keyframes, and the plan before a change
of frame count (``origin``), so switching models back and forth gives back the same plan.
Every function returns a new state; the input is left as it was, so a failed edit leaves the
plan unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict

from starvid.boxes import box_iou
from starvid.errors import StarVidError
from starvid.parsing import ParsedPrompt
from starvid.plan import (
    MAX_OBJECTS,
    MAX_PLAN_BYTES,
    BoxTuple,
    Plan,
    PlannedObject,
    load_plan,
    validate_plan,
)
from starvid.targets import check_plan_matches

CANVAS_WIDTH = 512
MIN_EDIT_SIZE = 0.02  # smallest box side a user edit may leave (fraction of the frame)
PIXEL_TOLERANCE = 1.5  # canvas pixels: less than this is rounding, not an edit
DEFAULT_NEW_BOX = 0.22  # side of an added object's box when its subject has no other instance
NEW_BOX_MARGIN = 0.05  # an added box keeps this far from the frame's edges


class EditorState(BaseModel):
    """What the user edits: the planned prompt, its parse, the plan and the video size."""

    model_config = ConfigDict(frozen=True)

    prompt: str  # as typed when it was planned (a generate compares the prompt box with it)
    parsed: ParsedPrompt
    plan: Plan
    size: tuple[int, int]  # video width, height in pixels
    # object id -> {frame the user pinned: the path's own keyframe there before, or None}
    pins: dict[str, dict[int, BoxTuple | None]] = {}
    origin: Plan | None = None  # the plan before the last frame-count changes, while unedited

    def with_plan(self, plan: Plan) -> EditorState:
        """The same state with an edited plan (pins of removed objects dropped)."""
        ids = {o.id for o in plan.objects}
        pins = {k: v for k, v in self.pins.items() if k in ids}
        return self.model_copy(update={"plan": plan, "pins": pins, "origin": None})

    def with_pin(self, plan: Plan, object_id: str, frame: int) -> EditorState:
        """The state after the user pinned ``object_id`` at ``frame`` (``plan``: the result)."""
        mine = dict(self.pins.get(object_id, {}))
        if frame not in mine:  # remember the path's own keyframe there, to give it back
            mine[frame] = self.plan.object(object_id).keyframes_or_fit().get(frame)
        return self.with_plan(plan).model_copy(update={"pins": self.pins | {object_id: mine}})


class Edit(NamedTuple):
    """The result of an edit: the new state, what to tell the user, and whether the canvas must
    be redrawn (its boxes differ from what the user left on it)."""

    state: EditorState
    notices: list[str]
    refresh: bool


def new_state(prompt: str, parsed: ParsedPrompt, plan: Plan, size: Sequence[int]) -> EditorState:
    """Editor state for a freshly planned or imported plan."""
    check_plan_matches(parsed, plan)
    return EditorState(prompt=prompt, parsed=parsed, plan=plan, size=(int(size[0]), int(size[1])))


# -- geometry -----------------------------------------------------------------------------------


def canvas_size(size: Sequence[int], width: int = CANVAS_WIDTH) -> tuple[int, int]:
    """Canvas pixel size for a video of ``size=(width, height)``."""
    w, h = size
    return width, max(16, round(width * h / w))


def repair_box(box: Sequence[float], min_size: float = MIN_EDIT_SIZE) -> tuple[list[float], str]:
    """Clamp a box (frame fractions) into the frame with a minimum size; says what it fixed."""
    x0, y0, x1, y1 = (float(v) for v in box)
    notes = []
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    c = [min(max(v, 0.0), 1.0) for v in (x0, y0, x1, y1)]
    if any(abs(a - b) > 1e-6 for a, b in zip(c, (x0, y0, x1, y1), strict=True)):
        notes.append("moved back inside the frame")
    for lo, hi, axis in ((0, 2, "width"), (1, 3, "height")):
        if c[hi] - c[lo] < min_size:
            mid = min(max((c[lo] + c[hi]) / 2, min_size / 2), 1 - min_size / 2)
            c[lo], c[hi] = mid - min_size / 2, mid + min_size / 2
            notes.append(f"{axis} raised to the minimum {min_size:g}")
    return c, " and ".join(notes)


def blank_background(size: Sequence[int]) -> np.ndarray:
    """A light canvas with a faint eighths grid, so positions read without a frame."""
    cw, ch = canvas_size(size)
    img = np.full((ch, cw, 3), 236, np.uint8)
    for i in range(1, 8):
        img[:, round(i * cw / 8)] = 214
        img[round(i * ch / 8), :] = 214
    img[:, cw // 2] = 196
    img[ch // 2, :] = 196
    return img


def fit_background(frame: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """A video frame resized (nearest) to the canvas."""
    cw, ch = canvas_size(size)
    h, w = frame.shape[:2]
    ys = np.minimum((np.arange(ch) * h / ch).astype(int), h - 1)
    xs = np.minimum((np.arange(cw) * w / cw).astype(int), w - 1)
    return np.ascontiguousarray(frame[ys][:, xs, :3]).astype(np.uint8)


def canvas_boxes(
    state: EditorState, frame: int, colors: dict[str, tuple[int, int, int]]
) -> list[dict]:
    """The boxes at ``frame`` in canvas pixels, labelled by object id and coloured per object."""
    cw, ch = canvas_size(state.size)
    out = []
    for obj in state.plan.objects:
        x0, y0, x1, y1 = obj.boxes[min(frame, len(obj.boxes) - 1)]
        out.append(
            {
                "label": obj.id,
                "color": colors[obj.id],
                "xmin": round(x0 * cw),
                "ymin": round(y0 * ch),
                "xmax": round(x1 * cw),
                "ymax": round(y1 * ch),
            }
        )
    return out


def subject_nouns(state: EditorState) -> list[str]:
    """The parse's subject nouns, once each, in prompt order (what a new box may be)."""
    return list(dict.fromkeys(s.noun for s in state.parsed.subjects))


def keyframes(obj: PlannedObject) -> list[int]:
    """The frames an object's path is pinned at (a planner's path: its fitted corners)."""
    return sorted(obj.keyframes_or_fit())


# -- edits ------------------------------------------------------------------------------------


def _next_id(noun: str, taken: set[str]) -> str:
    n = 1
    while f"{noun}-{n}" in taken:
        n += 1
    return f"{noun}-{n}"


def _subject_of(state: EditorState, noun: str) -> int:
    for i, s in enumerate(state.parsed.subjects):
        if s.noun == noun:
            return i
    raise StarVidError(
        f"'{noun}' is not a subject of the prompt ({', '.join(subject_nouns(state))})"
    )


def _with_objects(plan: Plan, objects: list[dict]) -> Plan:
    data = plan.to_dict()
    data["objects"] = objects
    return validate_plan(data)


def _append(state: EditorState, noun: str, frame: int, box: Sequence[float]) -> tuple[Plan, str]:
    """The plan with a new instance of ``noun`` holding ``box`` (a keyframe at ``frame``)."""
    plan = state.plan
    if len(plan.objects) >= MAX_OBJECTS:
        raise StarVidError(f"a plan holds at most {MAX_OBJECTS} objects")
    subject = _subject_of(state, noun)
    oid = _next_id(noun, {o.id for o in plan.objects})
    new = {
        "id": oid,
        "noun": noun,
        "subject": subject,
        "verbs": state.parsed.subjects[subject].verb_lemmas,
        "keyframes": {int(frame): [float(v) for v in box]},
    }
    return _with_objects(plan, [o.model_dump(exclude_none=True) for o in plan.objects] + [new]), oid


def add_object(state: EditorState, noun: str, frame: int) -> Edit:
    """A new instance of ``noun`` at ``frame``, in the free spot nearest the frame's centre that
    overlaps the other boxes least; it stays put until the user pins it elsewhere."""
    frame = int(min(max(frame, 0), state.plan.frames - 1))
    siblings = [o for o in state.plan.objects if o.noun == noun]
    if siblings:
        x0, y0, x1, y1 = siblings[0].boxes[frame]
        w, h = x1 - x0, y1 - y0
    else:
        w = h = DEFAULT_NEW_BOX
    others = np.asarray([o.boxes[frame] for o in state.plan.objects], dtype=float)
    # corners on a grid, kept off the edges so the box's label stays on the canvas
    xs = np.linspace(NEW_BOX_MARGIN, max(NEW_BOX_MARGIN, 1.0 - NEW_BOX_MARGIN - w), 8)
    ys = np.linspace(NEW_BOX_MARGIN, max(NEW_BOX_MARGIN, 1.0 - NEW_BOX_MARGIN - h), 8)
    spots = np.clip([[x, y, x + w, y + h] for y in ys for x in xs], 0.0, 1.0)
    centre = np.hypot((spots[:, 0] + spots[:, 2]) / 2 - 0.5, (spots[:, 1] + spots[:, 3]) / 2 - 0.5)
    overlap = box_iou(spots, others).max(axis=1)
    best = spots[int(np.lexsort((centre, np.round(overlap, 3)))[0])]
    plan, oid = _append(state, noun, frame, best)
    note = f"Added {oid} at frame {frame}; drag it where it belongs (an edit pins a keyframe)."
    return Edit(state.with_plan(plan), [note], True)


def remove_object(state: EditorState, object_id: str) -> Edit:
    """The plan without ``object_id`` (a plan keeps at least one object)."""
    plan = state.plan
    plan.object(object_id)  # a clear error when there is no such object
    if len(plan.objects) == 1:
        return Edit(state, ["A plan needs at least one box; the last box was kept."], True)
    kept = [o.model_dump(exclude_none=True) for o in plan.objects if o.id != object_id]
    return Edit(state.with_plan(_with_objects(plan, kept)), [f"Removed {object_id}."], True)


def _own_boxes(state: EditorState, frame: int, entries: list) -> dict[int, str]:
    """Which canvas box is an object's own when its label appears twice (a new box labelled
    with an existing id): the one nearest the object's current box; the others are new."""
    own: dict[str, tuple[int, float]] = {}
    ids = {o.id for o in state.plan.objects}
    for i, (label, _, box, _) in enumerate(entries):
        if label in ids:
            d = float(np.abs(np.subtract(box, state.plan.object(label).boxes[frame])).sum())
            if label not in own or d < own[label][1]:
                own[label] = (i, d)
    return {i: label for label, (i, _) in own.items()}


def _moved_px(state: EditorState, box: Sequence[float], old: Sequence[float]) -> float:
    cw, ch = canvas_size(state.size)
    scale = (cw, ch, cw, ch)
    return max(abs(a - b) * s for a, b, s in zip(box, old, scale, strict=True))


def apply_canvas(state: EditorState, frame: int, boxes: Sequence[dict]) -> Edit:
    """Fold the canvas boxes at ``frame`` back into the plan.

    A moved or resized box pins a keyframe for its object at ``frame`` (``Plan.pin``); a box
    missing from the canvas removes its object (never the last one); a box labelled with a noun
    (or with an id already used) adds a new instance. Boxes outside the frame or too small are
    repaired, with a notice.
    """
    plan = state.plan
    frame = int(min(max(frame, 0), plan.frames - 1))
    cw, ch = canvas_size(state.size)
    nouns = subject_nouns(state)
    entries = []
    for raw in boxes:
        label = str(raw.get("label") or "").strip()
        frac = [raw["xmin"] / cw, raw["ymin"] / ch, raw["xmax"] / cw, raw["ymax"] / ch]
        entries.append((label, frac, *repair_box(frac)))
    own = _own_boxes(state, frame, entries)
    notices: list[str] = []
    refresh = False
    additions = []
    for i, (label, frac, box, fixed) in enumerate(entries):
        if i in own:
            if fixed:
                notices.append(f"{label} at frame {frame}: {fixed}.")
                refresh = True
            if fixed or _moved_px(state, box, plan.object(label).boxes[frame]) > PIXEL_TOLERANCE:
                state = state.with_pin(state.plan.pin(label, frame, tuple(box)), label, frame)
                shown = ", ".join(f"{v:.2f}" for v in box)
                notices.append(f"Pinned {label} at frame {frame}: [{shown}].")
            continue
        if not label:
            continue  # just drawn: the canvas asks for its label first; it counts once labelled
        if min(abs(frac[2] - frac[0]), abs(frac[3] - frac[1])) < MIN_EDIT_SIZE:
            notices.append("A new box needs a size (drag to draw it); ignored.")
            refresh = True
            continue
        noun = label if label in nouns else label.rsplit("-", 1)[0]
        if noun not in nouns:
            notices.append(
                f"{label}: label a new box with one of the nouns ({', '.join(nouns)}) to add an "
                "instance; ignored."
            )
            refresh = True
            continue
        if fixed:
            notices.append(f"new {noun} at frame {frame}: {fixed}.")
        additions.append((noun, box))
    plan = state.plan
    removed = [o.id for o in plan.objects if o.id not in own.values()]
    if removed and len(removed) == len(plan.objects) and not additions:
        notices.append("A plan needs at least one box; the last box was kept.")
        return Edit(state, notices, True)
    for noun, box in additions:
        new_plan, oid = _append(state, noun, frame, box)
        state = state.with_plan(new_plan)
        notices.append(f"Added {oid}.")
    if removed:
        kept = [o.model_dump(exclude_none=True) for o in state.plan.objects if o.id not in removed]
        state = state.with_plan(_with_objects(state.plan, kept))
        notices += [f"Removed {oid}." for oid in removed]
    return Edit(state, notices, refresh or bool(removed) or bool(additions))


def clear_keyframe(state: EditorState, frame: int) -> Edit:
    """Unpin what the user pinned at ``frame``: each such object's path there is the planner's
    again (its own keyframe there comes back). Other objects, and keyframes the planner made,
    are left alone."""
    plan, notices, pins = state.plan, [], dict(state.pins)
    for oid, mine in state.pins.items():
        if frame not in mine:
            continue
        before = mine[frame]
        plan = plan.pin(oid, frame, before) if before is not None else plan.unpin(oid, frame)
        pins[oid] = {k: v for k, v in mine.items() if k != frame}
        notices.append(f"{oid}: your keyframe at frame {frame} removed.")
    if not notices:
        notices = [
            f"Nothing you pinned at frame {frame} (the planner's own keyframes stay; drag a box "
            "to pin one)."
        ]
    pins = {k: v for k, v in pins.items() if v}
    return Edit(state.with_plan(plan).model_copy(update={"pins": pins}), notices, True)


def resample(state: EditorState, frames: int) -> EditorState:
    """The same trajectories over another number of frames (keyframes and the user's pins
    rescaled in time; nothing new is pinned). From a plan not edited since the last resample,
    the resample starts from the plan before it, so going back gives back that plan."""
    base = state.origin or state.plan
    frames = int(frames)
    plan = base.resample(frames)
    scale = (frames - 1) / (state.plan.frames - 1) if state.plan.frames > 1 else 0.0
    pins = {oid: {round(k * scale): v for k, v in mine.items()} for oid, mine in state.pins.items()}
    origin = None if base.frames == frames else base
    return state.model_copy(update={"plan": plan, "pins": pins, "origin": origin})


def resize(state: EditorState, size: Sequence[int]) -> EditorState:
    """The same plan on a video of another size (the canvas follows the aspect)."""
    return state.model_copy(update={"size": (int(size[0]), int(size[1]))})


# -- files ------------------------------------------------------------------------------------


def export_plan(state: EditorState) -> str:
    """The plan as the contract's JSON text, keyframes and the planned prompt included."""
    plan = state.plan.model_copy(update={"prompt": state.prompt})
    return plan.to_json(indent=2)


def read_plan_upload(path: str | Path) -> Plan:
    """A plan from an uploaded file: refused in one line when too large, not JSON, or with too
    many objects (checked before validating each of them)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_PLAN_BYTES:
            raise StarVidError(f"invalid plan: larger than {MAX_PLAN_BYTES // 2**20} MB")
        text = path.read_bytes()
    except OSError as exc:
        raise StarVidError(f"cannot read the uploaded plan: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return load_plan(text)  # the plan loader names what is wrong
    objects = data.get("objects") if isinstance(data, dict) else None
    if isinstance(objects, list) and len(objects) > MAX_OBJECTS:
        raise StarVidError(
            f"invalid plan: {len(objects)} objects; a plan holds at most {MAX_OBJECTS}"
        )
    return validate_plan(data)


def import_plan(plan: Plan, state: EditorState | None, size: Sequence[int], parse) -> EditorState:
    """Editor state for an imported plan.

    The current parse is kept when the plan fits it; otherwise the plan's own prompt is parsed
    (``parse``: the parser, called only then), so a run never parses again.
    """
    if state is not None:
        try:
            return new_state(state.prompt, state.parsed, plan, size)
        except StarVidError:
            if not plan.prompt:
                raise
    if not plan.prompt:
        raise StarVidError("this plan has no prompt: type the prompt, press Plan, then import")
    return new_state(plan.prompt, parse(plan.prompt), plan, size)
