"""Checking and repairing the LLM planner's draft trajectories before they become a Plan.

Corners are sorted and clamped, tiny boxes enlarged, stated directions enforced (a subject
said to stay still stays still), paths kept inside the frame, the instances of one subject moved
together, and instances pushed apart (then shrunk) until each has its own region: instances of
one subject never overlap, other subjects overlap little.
"""

from __future__ import annotations

import numpy as np

from starvid.boxes import iou
from starvid.planning.llm_prompts import (
    COLUMN_X,
    COLUMNS,
    DIRECTIONS,
    ROW_Y,
    ROWS,
    ObjectSpec,
    coarse_keyframes,
    fit_inside,
)

SEPARATION_IOU = 0.3  # different subjects may overlap this much at the first frame
SIBLING_GAP = 0.01  # instances of one subject keep at least this far apart
_MIN_SIDE = 0.05
_MOVE_EPS = 0.05


class LlmFailure(Exception):
    """The model gave no usable plan (timeout, cut-off output, unrepairable layout)."""


def box_valid(box: np.ndarray) -> bool:
    return bool(
        np.all(np.isfinite(box))
        and np.all(box >= 0)
        and np.all(box <= 1)
        and box[0] + 1e-3 <= box[2]
        and box[1] + 1e-3 <= box[3]
    )


def motion_of(keys: dict[int, np.ndarray]) -> tuple[float, float, float]:
    """(dx, dy, area ratio) of a trajectory's centre from its first to its last keyframe."""
    first, last = keys[min(keys)], keys[max(keys)]
    dx = (last[0] + last[2] - first[0] - first[2]) / 2
    dy = (last[1] + last[3] - first[1] - first[3]) / 2
    area0 = max((first[2] - first[0]) * (first[3] - first[1]), 1e-9)
    area1 = (last[2] - last[0]) * (last[3] - last[1])
    return float(dx), float(dy), float(area1 / area0)


def follows(keys: dict[int, np.ndarray], direction: str) -> bool:
    """Whether a trajectory moves in ``direction`` (sign of the centre's motion, or scale)."""
    dx, dy, ratio = motion_of(keys)
    if direction == "bounce":
        ys = [(b[1] + b[3]) / 2 for b in keys.values()]
        return len(keys) > 2 and max(ys) - min(ys) > _MOVE_EPS / 2
    return {
        "left": dx < -_MOVE_EPS,
        "right": dx > _MOVE_EPS,
        "up": dy < -_MOVE_EPS,
        "down": dy > _MOVE_EPS,
        "toward": ratio > 1.15,
        "away": ratio < 1 / 1.15,
        "still": abs(dx) <= _MOVE_EPS and abs(dy) <= _MOVE_EPS and 0.87 < ratio < 1.15,
    }[direction]


def _translate(keys: dict[int, np.ndarray], dx: float, dy: float) -> float:
    """Shift a trajectory in place by up to (dx, dy), staying inside the frame; returns moved."""
    b = np.array(list(keys.values()))
    dx = float(np.clip(dx, -b[:, 0].min(), 1 - b[:, 2].max()))
    dy = float(np.clip(dy, -b[:, 1].min(), 1 - b[:, 3].max()))
    for f in keys:
        keys[f] = keys[f] + np.array([dx, dy, dx, dy])
    return abs(dx) + abs(dy)


def _too_close(a: np.ndarray, b: np.ndarray, siblings: bool) -> float:
    """How badly two first-frame boxes collide (0: not at all): instances of one subject must
    not touch (gap ``SIBLING_GAP``), others may overlap up to ``SEPARATION_IOU``."""
    if siblings:
        ox = min(a[2], b[2]) - max(a[0], b[0]) + SIBLING_GAP
        oy = min(a[3], b[3]) - max(a[1], b[1]) + SIBLING_GAP
        return 1.0 + iou(a, b) if ox > 1e-9 and oy > 1e-9 else 0.0
    v = iou(a, b)
    return v if v >= SEPARATION_IOU else 0.0


def _separate(
    trajs: list[dict[int, np.ndarray]], ids: list[str], subjects: list[int] | None = None
) -> list[str]:
    """Push apart (then shrink) objects whose first-frame boxes collide (``_too_close``)."""
    notes: set[str] = set()
    subjects = subjects if subjects is not None else list(range(len(trajs)))
    for rounds in range(400):
        worst, pair = 0.0, None
        for i in range(len(trajs)):
            for j in range(i + 1, len(trajs)):
                v = _too_close(trajs[i][0], trajs[j][0], subjects[i] == subjects[j])
                if v > worst:
                    worst, pair = v, (i, j)
        if pair is None:
            return sorted(notes)
        i, j = pair
        a, b = trajs[i][0], trajs[j][0]
        gap = SIBLING_GAP if subjects[i] == subjects[j] else 0.0
        ox = min(a[2], b[2]) - max(a[0], b[0]) + gap
        oy = min(a[3], b[3]) - max(a[1], b[1]) + gap
        ca, cb = (a[:2] + a[2:]) / 2, (b[:2] + b[2:]) / 2
        moved = 0.0
        # The cheaper axis first; the other one when the paths are pinned against the edges.
        for axis in (0, 1) if ox <= oy else (1, 0):
            sign = 1.0 if cb[axis] > ca[axis] or (cb[axis] == ca[axis] and j > i) else -1.0
            step = np.zeros(2)
            step[axis] = ((ox, oy)[axis] / 2 + 0.01) * sign
            moved = _translate(trajs[i], *-step) + _translate(trajs[j], *step)
            if moved >= 1e-4:
                break
        notes.add(f"separated {ids[i]} and {ids[j]}")
        # Pinned against the frame edges, or crowded (pushes keep undoing each other):
        # make both smaller.
        siblings = subjects[i] == subjects[j]
        if moved < 1e-4 or rounds % (10 if siblings else 20) == 9:
            # instances of one subject shrink together, so they stay alike
            group = (
                [k for k in range(len(trajs)) if subjects[k] == subjects[i]] if siblings else (i, j)
            )
            for k in group:
                for f in trajs[k]:
                    trajs[k][f] = _shrink(trajs[k][f], 0.9)
            notes.add(
                f"shrank {ids[i]} and {ids[j]}"
                if not siblings
                else f"shrank every {ids[i].rsplit('-', 1)[0]}"
            )
    raise LlmFailure("could not give every instance its own region")


def _shrink(box: np.ndarray, factor: float) -> np.ndarray:
    c = (box[:2] + box[2:]) / 2
    half = np.maximum((box[2:] - box[:2]) / 2 * factor, _MIN_SIDE / 2)
    return np.concatenate([c - half, c + half])


def repair(
    trajs: list[dict[int, np.ndarray]], specs: list[ObjectSpec], frames: int
) -> tuple[list[dict[int, np.ndarray]], list[str]]:
    """Sort and clamp corners, fix tiny boxes, start where the prompt says, follow stated
    directions, keep paths inside the frame and give every instance its own region at frame 0."""
    notes: list[str] = []
    out = []
    for keys, spec in zip(trajs, specs, strict=True):
        fixed = {}
        for f, box in keys.items():
            b = np.nan_to_num(np.asarray(box, dtype=float), nan=0.5)
            b = np.array([min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])])
            b = np.clip(b, 0.0, 1.0)
            if b[2] - b[0] < _MIN_SIDE or b[3] - b[1] < _MIN_SIDE:
                c = (b[:2] + b[2:]) / 2
                half = np.maximum((b[2:] - b[:2]) / 2, 0.05)
                b = np.concatenate([c - half, c + half])
                notes.append(f"enlarged a tiny box of {spec.id}")
            if not np.allclose(b, box):
                notes.append(f"sorted/clamped a box of {spec.id}")
            fixed[f] = b
        where = _start_where_stated(fixed, spec)
        if where:
            notes.append(f"moved {spec.id} to start {where} as the prompt says")
        stated = [d for d in spec.directions if d != "still"]
        if spec.directions == ("still",) and not follows(fixed, "still"):
            fixed = {0: fixed[min(fixed)]}
            notes.append(f"kept {spec.id} still as the prompt says")
        elif (
            stated
            and len(spec.directions) < len(DIRECTIONS)
            and not any(follows(fixed, d) for d in stated)
        ):
            first = fixed[min(fixed)]
            way = stated[0]
            if set(stated) == {"left", "right"}:  # "across": head where there is room
                way = "right" if first[0] + first[2] < 1.0 else "left"
            fixed = coarse_keyframes(first, way, "medium", frames)
            notes.append(f"made {spec.id} move {way} as the prompt says")
        fitted = fit_inside(fixed)
        if any(not np.allclose(fitted[f], fixed[f]) for f in fixed):
            notes.append(f"kept {spec.id} inside the frame")
        out.append(fitted)
    notes += _move_together(out, specs)
    notes += _separate(out, [s.id for s in specs], [s.subject for s in specs])
    return out, list(dict.fromkeys(notes))


def _move_together(trajs: list[dict[int, np.ndarray]], specs: list[ObjectSpec]) -> list[str]:
    """Give every instance of a subject its first instance's motion (the same shift and scale
    at the same keyframes, from its own start), so instances apart at the first frame stay
    apart: "three triangles moving up" rise side by side instead of running into each other."""
    notes = []
    lead_of: dict[int, int] = {}
    for k, spec in enumerate(specs):
        lead = lead_of.setdefault(spec.subject, k)
        if lead == k:
            continue
        keys = trajs[lead]
        start, own = keys[min(keys)], trajs[k][min(trajs[k])]
        moved = {}
        for f, box in keys.items():
            shift = (box[:2] + box[2:]) / 2 - (start[:2] + start[2:]) / 2
            scale = (box[2:] - box[:2]) / np.maximum(start[2:] - start[:2], 1e-9)
            c, half = (own[:2] + own[2:]) / 2 + shift, (own[2:] - own[:2]) / 2 * scale
            moved[f] = np.concatenate([c - half, c + half])
        moved = fit_inside(moved)
        if set(moved) != set(trajs[k]) or any(
            not np.allclose(moved[f], trajs[k][f]) for f in moved
        ):
            notes.append(f"moved {spec.id} with {specs[lead].id}")
        trajs[k] = moved
    return notes


def _region(value: float, names: tuple[str, str, str]) -> str:
    """The third of an axis a box centre is in, with stated_options' bounds (0.4 and 0.6)."""
    return names[0] if value < 0.4 else names[2] if value > 0.6 else names[1]


def _start_where_stated(keys: dict[int, np.ndarray], spec: ObjectSpec) -> str:
    """Shift a trajectory whose first box is not in the one column (row) the prompt names.

    In raw mode the model writes any corners; in coarse mode the grammar already offers only the
    named region. Returns where it moved the start ("left", "left top"), or "" if it did not.
    """
    first = keys[min(keys)]
    centre = (first[:2] + first[2:]) / 2
    step, moved = np.zeros(2), []
    for axis, named, names, at in (
        (0, spec.columns, COLUMNS, COLUMN_X),
        (1, spec.rows, ROWS, ROW_Y),
    ):
        if len(named) == 1 and _region(centre[axis], names) != named[0]:
            step[axis] = at[named[0]] - centre[axis]
            moved.append(named[0])
    if moved:
        _translate(keys, *step)
    return " ".join(moved)
