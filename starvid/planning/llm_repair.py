"""Checking and repairing the LLM planner's draft trajectories before they become a Plan.

Corners are sorted and clamped, tiny boxes enlarged, stated directions enforced, paths kept
inside the frame, and instances pushed apart (then shrunk) until each has its own region.
"""

from __future__ import annotations

import numpy as np

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

SEPARATION_IOU = 0.3
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


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``[x0, y0, x1, y1]`` boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 1.0


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


def _separate(trajs: list[dict[int, np.ndarray]], ids: list[str]) -> list[str]:
    """Push apart (then shrink) objects whose first-frame boxes overlap too much."""
    notes: set[str] = set()
    for rounds in range(400):
        worst, pair = SEPARATION_IOU, None
        for i in range(len(trajs)):
            for j in range(i + 1, len(trajs)):
                v = iou(trajs[i][0], trajs[j][0])
                if v >= worst:
                    worst, pair = v, (i, j)
        if pair is None:
            return sorted(notes)
        i, j = pair
        a, b = trajs[i][0], trajs[j][0]
        ox = min(a[2], b[2]) - max(a[0], b[0])
        oy = min(a[3], b[3]) - max(a[1], b[1])
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
        if moved < 1e-4 or rounds % 20 == 19:
            for k in (i, j):
                for f in trajs[k]:
                    trajs[k][f] = _shrink(trajs[k][f], 0.9)
            notes.add(f"shrank {ids[i]} and {ids[j]}")
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
        if len(spec.directions) < len(DIRECTIONS) and not any(follows(fixed, d) for d in stated):
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
    notes += _separate(out, [s.id for s in specs])
    return out, list(dict.fromkeys(notes))


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
