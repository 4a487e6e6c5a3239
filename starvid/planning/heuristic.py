"""The heuristic planner: intents laid out as boxes with a small cost search (no model).

Each subject's instances form a block (a row or a grid), and the block goes where its intent's
preferences are best met without covering what is already placed, with the whole trajectory
inside the frame.

``layout_intents`` is public so that other planners (the LLM planner picks coarse choices such as
a region and a direction) can turn intents into boxes with the same layout and repair rules.
``describe_motion`` names the motion any plan's boxes show ("left", "hop", ...).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from starvid.boxes import box_iou
from starvid.errors import StarVidError
from starvid.parsing import ParsedPrompt
from starvid.plan import MAX_FRAMES, Plan, PlannedObject
from starvid.planning.intent import Intent, Motion, cap_counts, instance_ids, read_intent

SEPARATION_IOU = 0.1
"""Boxes of different instances overlap by less than this IoU at frame 0."""

MAX_SEED = 2**63 - 1
"""Seeds go up to the generation settings' bound, so one seed can serve the plan and the video."""

MARGIN = 0.02  # keep boxes off the very edge of the frame
DEFAULT_Y = 0.55  # subjects stand a little below the middle unless told otherwise

# -- layout --------------------------------------------------------------------------------------


def _times(frames: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)


def _formations(n: int) -> list[tuple[int, int]]:
    """(columns, rows) grids that hold ``n`` instances without an empty row."""
    out = []
    for rows in range(1, min(n, 4) + 1):
        cols = math.ceil(n / rows)
        if (cols, rows) not in out and cols * (rows - 1) < n:
            out.append((cols, rows))
    return out


def _block_offsets(n: int, cols: int, rows: int, w: float, h: float) -> np.ndarray:
    """Instance centres relative to the block centre, shape (n, 2); the last row is centred."""
    gap_x, gap_y = 0.25 * w, 0.2 * h
    out = []
    for i in range(n):
        row, col = divmod(i, cols)
        in_row = min(cols, n - row * cols)
        out.append(((col - (in_row - 1) / 2) * (w + gap_x), (row - (rows - 1) / 2) * (h + gap_y)))
    return np.asarray(out, dtype=float)


def _relative_paths(
    offsets: np.ndarray, w: float, h: float, motion: Motion, sign: float, t: np.ndarray
) -> np.ndarray:
    """Boxes of every instance for a block centred at (0, 0) at frame 0: (n, frames, 4)."""
    scale = 1.0 + (motion.scale - 1.0) * t
    cx = sign * motion.dx * t + motion.sway * np.sin(4 * np.pi * t)
    cy = motion.dy * t - motion.hop * h * np.abs(np.sin(np.pi * motion.hops * t))
    ww, hh = w * scale, h * scale
    base = np.stack([cx - ww / 2, cy - hh / 2, cx + ww / 2, cy + hh / 2], axis=-1)  # (F, 4)
    shift = (
        np.concatenate([offsets, offsets], axis=1)[:, None, :]
        * np.stack([scale, scale, scale, scale], axis=-1)[None]
    )
    return base[None] + shift


def _scaled(motion: Motion, k: float) -> Motion:
    return replace(
        motion,
        dx=motion.dx * k,
        dy=motion.dy * k,
        hop=motion.hop * k,
        scale=1.0 + (motion.scale - 1.0) * k,
        sway=motion.sway * k,
    )


def _fit(
    offsets: np.ndarray, w: float, h: float, motion: Motion, t: np.ndarray
) -> tuple[Motion, float, float]:
    """Shrink the motion (then the boxes) until the block's whole path fits in the frame.

    Returns the motion, the box size factor and how much of the motion was kept (0..1).
    """
    room = 1.0 - 2 * MARGIN
    size, keep = 1.0, 1.0
    for _ in range(60):
        m = _scaled(motion, keep)
        paths = _relative_paths(offsets * size, w * size, h * size, m, 1.0, t)
        span_x = paths[..., 2].max() - paths[..., 0].min()
        span_y = paths[..., 3].max() - paths[..., 1].min()
        if span_x <= room and span_y <= room:
            return m, size, keep
        if keep > 0.35 or size < 0.5:
            keep *= 0.9
        else:
            size *= 0.92
    return _scaled(motion, keep), size, keep


def _overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over the smaller area for every pair: a (..., 4) vs b (M, 4) -> (..., M)."""
    a = a[..., None, :]
    iw = np.clip(np.minimum(a[..., 2], b[:, 2]) - np.maximum(a[..., 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[:, 3]) - np.maximum(a[..., 1], b[:, 1]), 0, None)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return iw * ih / np.minimum(area_a, area_b)


def _relation_anchors(
    relation: str, target: np.ndarray, bw: float, bh: float
) -> list[tuple[float, float]]:
    """Preferred centres of the box around a block's whole path, given the target's frame-0
    bounding box and that box's width ``bw`` and height ``bh``."""
    x0, y0, x1, y1 = target
    cx, cy, tw, th = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    gap = 0.03
    side = (tw + bw) / 2 + gap
    return {
        "above": [(cx, y0 - gap - bh / 2)],
        "below": [(cx, y1 + gap + bh / 2)],
        "left_of": [(x0 - gap - bw / 2, cy)],
        "right_of": [(x1 + gap + bw / 2, cy)],
        "beside": [(cx - side, cy), (cx + side, cy)],
        "behind": [(cx - 0.9 * side, cy - 0.3 * th), (cx + 0.9 * side, cy - 0.3 * th)],
        "front": [(cx - 0.9 * side, cy + 0.3 * th), (cx + 0.9 * side, cy + 0.3 * th)],
    }.get(relation, [])


def _placement_order(intents: list[Intent]) -> list[int]:
    """Subjects in prompt order, except that a relation's target is placed before it and
    subjects whose words name a place ("on the left") go before those free to go anywhere."""
    order: list[int] = []
    pending = sorted(
        range(len(intents)), key=lambda i: (intents[i].x is None and intents[i].y is None, i)
    )
    while pending:
        ready = [i for i in pending if intents[i].target is None or intents[i].target in order]
        if not ready:  # a cycle of relations: drop the first one
            intents[pending[0]].relation = intents[pending[0]].target = None
            continue
        order.append(ready[0])
        pending.remove(ready[0])
    return order


def _default_anchor(intents: list[Intent], k: int) -> tuple[float, float]:
    """Where subject ``k`` goes when its words say nothing: subjects spread left to right in
    prompt order; something else above (below) it pushes it down (up) and to the middle."""
    x, y = (k + 0.5) / len(intents), DEFAULT_Y
    for other in intents:
        if other.target == k and other.relation in ("above", "below", "behind", "front"):
            x = 0.5
            if other.relation == "above":
                y = 0.7
            elif other.relation == "below":
                y = 0.35
    return x, y


def _base_size(total: int) -> float:
    """Box width for a plan of ``total`` instances: one subject fills ~40% of the width."""
    return min(0.4, 0.42 / math.sqrt(max(total, 1)))


def layout_intents(
    intents: list[Intent], frames: int, seed: int = 0
) -> tuple[list[np.ndarray], list[str]]:
    """Place every subject's instances and their trajectories.

    Returns one array of boxes ``(count, frames, 4)`` per intent (in the intents' order) and
    warnings. Boxes of different instances are kept apart at frame 0 (IoU < ``SEPARATION_IOU``)
    whenever the frame allows it; every box stays inside the frame.
    """
    # relations name subjects; within the layout they point at positions in ``intents``
    position = {it.subject: k for k, it in enumerate(intents)}
    intents = [
        replace(
            it,
            target=position.get(it.target),
            relation=it.relation if it.target in position else None,
        )
        for it in intents
    ]
    t = _times(frames)
    probe = np.unique(np.round(np.linspace(0, frames - 1, min(frames, 16))).astype(int))
    total = sum(i.count for i in intents)
    base = _base_size(total)
    rng = np.random.default_rng(seed)
    order = _placement_order(intents)
    warnings: list[str] = []
    placed0: list[np.ndarray] = []  # frame-0 boxes placed so far
    placed_paths: list[np.ndarray] = []  # (frames_probe, 4) per placed instance
    blocks: dict[int, np.ndarray] = {}  # subject -> frame-0 bounding box of its block
    result: dict[int, np.ndarray] = {}

    for k in order:
        it = intents[k]
        # seed 0 is the canonical layout; other seeds vary sizes and free positions a little
        vary = seed != 0
        w0 = base * it.size / math.sqrt(it.aspect / 1.15) * (rng.uniform(0.9, 1.1) if vary else 1)
        h0 = w0 * it.aspect
        default = _default_anchor(intents, k)
        if vary:
            default = (default[0] + rng.uniform(-0.15, 0.15), default[1] + rng.uniform(-0.1, 0.1))
        for attempt in range(8):  # shrink the boxes until the instances fit apart
            shrink = 0.88**attempt
            best = None
            for cand in _candidates(it, w0 * shrink, h0 * shrink, t):
                cost = _score(cand, it, placed0, placed_paths, blocks, probe, default, rng)
                i = int(np.argmin(cost))
                if best is None or cost[i] < best[0]:
                    best = (float(cost[i]), cand, i)
            start = _placed(best[1], best[2])[:, 0]
            if not placed0 or box_iou(start, np.asarray(placed0)).max() < SEPARATION_IOU:
                break
        else:
            warnings.append(f"{it.noun}: not enough room to keep every instance apart at frame 0")
        _, cand, i = best
        paths = _clamp_into_frame(_placed(cand, i))
        result[k] = paths
        placed0.extend(paths[:, 0])
        placed_paths.extend(paths[:, probe])
        blocks[k] = np.array(
            [paths[:, 0, 0].min(), paths[:, 0, 1].min(), paths[:, 0, 2].max(), paths[:, 0, 3].max()]
        )
        if cand["keep"] < 0.6 and (it.motion.dx or it.motion.dy) and not it.motion.stretch:
            warnings.append(f"{it.noun}: motion shortened to fit in the frame")
    return [result[k] for k in range(len(intents))], warnings


def _candidates(it: Intent, w: float, h: float, t: np.ndarray) -> list[dict]:
    """For each formation and travel sign: every feasible block position and its paths."""
    out = []
    signs = (1.0, -1.0) if it.motion.free_direction and it.motion.dx else (1.0,)
    for cols, rows in _formations(it.count):
        offsets = _block_offsets(it.count, cols, rows, w, h)
        motion, size, keep = _fit(offsets, w, h, it.motion, t)
        for sign in signs:
            rel = _relative_paths(offsets * size, w * size, h * size, motion, sign, t)
            lo_x, hi_x = MARGIN - rel[..., 0].min(), 1 - MARGIN - rel[..., 2].max()
            lo_y, hi_y = MARGIN - rel[..., 1].min(), 1 - MARGIN - rel[..., 3].max()
            xs = np.linspace(lo_x, hi_x, 25) if hi_x > lo_x else np.array([(lo_x + hi_x) / 2])
            ys = np.linspace(lo_y, hi_y, 25) if hi_y > lo_y else np.array([(lo_y + hi_y) / 2])
            gx, gy = np.meshgrid(xs, ys, indexing="ij")
            centres = np.stack([gx.ravel(), gy.ravel()], axis=1)  # (C, 2)
            out.append(
                {
                    "rel": rel,  # (n, F, 4) for a block centred at (0, 0) at frame 0
                    "centres": centres,
                    "sign": sign,
                    "rows": rows,
                    # "across": the longer the traverse the better, but it is no failure
                    "keep": keep if not it.motion.stretch else 0.7 + 0.3 * keep,
                    "size": size,
                }
            )
    return out


def _shifted(cand: dict, frames: np.ndarray | list[int]) -> np.ndarray:
    """Boxes of every candidate position at the given frames: (C, n, len(frames), 4)."""
    c = cand["centres"]
    return cand["rel"][None][:, :, frames] + np.concatenate([c, c], axis=1)[:, None, None, :]


def _placed(cand: dict, i: int) -> np.ndarray:
    """All boxes of candidate position ``i``: (n, frames, 4)."""
    c = cand["centres"][i]
    return cand["rel"] + np.concatenate([c, c])


def _score(
    cand: dict,
    it: Intent,
    placed0: list[np.ndarray],
    placed_paths: list[np.ndarray],
    blocks: dict[int, np.ndarray],
    probe: np.ndarray,
    default: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Cost of every candidate position (lower is better)."""
    rel, start = cand["rel"], cand["centres"]
    first = _shifted(cand, [0])[:, :, 0]  # (C, n, 4)
    mid = _shifted(cand, [rel.shape[1] // 2])[:, :, 0]
    mid_c = np.stack(
        [(mid[..., 0] + mid[..., 2]).mean(1) / 2, (mid[..., 1] + mid[..., 3]).mean(1) / 2], 1
    )
    cost = np.zeros(len(start))
    # where the words put it (start) or, without words, spread subjects left to right (mid-path)
    for axis, wanted in ((0, it.x), (1, it.y)):
        if wanted is not None:
            cost += 3.0 * (start[:, axis] - wanted) ** 2
        else:
            cost += 0.4 * (mid_c[:, axis] - default[axis]) ** 2
    if it.relation and it.target in blocks:
        # the relation should hold over the whole clip: compare the box around the whole path
        rel_union = np.array(
            [rel[..., 0].min(), rel[..., 1].min(), rel[..., 2].max(), rel[..., 3].max()]
        )
        union = rel_union + np.concatenate([start, start], axis=1)
        uc = (union[:, :2] + union[:, 2:]) / 2
        bw, bh = union[0, 2:] - union[0, :2]
        anchors = _relation_anchors(it.relation, blocks[it.target], bw, bh)
        if anchors:
            d = [(uc[:, 0] - ax) ** 2 + (uc[:, 1] - ay) ** 2 for ax, ay in anchors]
            cost += 4.0 * np.min(d, axis=0)
        if it.relation in ("toward", "away_from"):
            tb = blocks[it.target]
            toward = np.sign((tb[0] + tb[2]) / 2 - start[:, 0]) == cand["sign"]
            wrong = ~toward if it.relation == "toward" else toward
            cost += 1.0 * wrong
    if it.motion.free_direction and it.motion.dx and it.relation not in ("toward", "away_from"):
        # head where there is room
        left, right = first[..., 0].min(1), 1 - first[..., 2].max(1)
        ahead, behind = (right, left) if cand["sign"] > 0 else (left, right)
        cost += 0.2 * np.clip(behind - ahead, 0, None) + 0.01 * (cand["sign"] < 0)  # else: read
    if placed0:
        others0 = np.asarray(placed0)
        cost += 60.0 * _overlap(first, others0).sum(axis=(1, 2))
        others = np.asarray(placed_paths)  # (M, P, 4)
        mine = _shifted(cand, probe)  # (C, n, P, 4)
        ov = [_overlap(mine[:, :, p], others[:, p]).sum(axis=(1, 2)) for p in range(len(probe))]
        cost += 1.5 * np.mean(ov, axis=0) + 1.5 * np.max(ov, axis=0)
    cost += 1.0 * (1 - cand["keep"]) + 0.5 * (1 - cand["size"]) + 0.02 * (cand["rows"] - 1)
    cost += 0.005 * rng.random(len(start))  # the seed breaks ties
    return cost


def _clamp_into_frame(boxes: np.ndarray) -> np.ndarray:
    """Shift each box into [0, 1] keeping its size (clip only what is larger than the frame)."""
    b = boxes.copy()
    for lo, hi in ((0, 2), (1, 3)):
        size = np.minimum(b[..., hi] - b[..., lo], 1.0)
        start = np.clip(b[..., lo], 0.0, 1.0 - size)
        b[..., lo], b[..., hi] = start, start + size
    return np.clip(b, 0.0, 1.0)


# -- planners ------------------------------------------------------------------------------------


def plan_from_intents(
    intents: list[Intent],
    frames: int,
    seed: int = 0,
    planner: str = "heuristic",
    prompt: str | None = None,
    warnings: list[str] | None = None,
) -> Plan:
    """Lay out ``intents`` and build the validated Plan (ids numbered per noun)."""
    boxes, layout_warnings = layout_intents(intents, frames, seed)
    ids = instance_ids([i.noun for i in intents], [i.count for i in intents])
    objects = [
        PlannedObject(
            id=ids[k][j],
            noun=it.noun,
            subject=it.subject,
            verbs=list(it.verbs),
            boxes=[tuple(float(round(v, 4)) for v in box) for box in boxes[k][j]],
        )
        for k, it in enumerate(intents)
        for j in range(it.count)
    ]
    return Plan(
        frames=frames,
        objects=objects,
        planner=planner,
        prompt=prompt,
        warnings=list(warnings or []) + layout_warnings,
    )


def heuristic_plan(parsed: ParsedPrompt, frames: int = 16, seed: int = 0) -> Plan:
    """Plan boxes and trajectories from the words alone (deterministic for prompt and seed)."""
    check_frames(frames)
    check_seed(seed)
    if not parsed.subjects:
        raise StarVidError("the prompt has no subject to plan")
    counts, warnings = cap_counts(parsed)
    intents = []
    for k, count in enumerate(counts):
        if count:
            intent = read_intent(parsed, k)
            intent.count = count
            intents.append(intent)
    return plan_from_intents(
        intents, frames, seed, planner="heuristic", prompt=parsed.prompt, warnings=warnings
    )


def check_frames(frames: int) -> None:
    """Raise StarVidError unless ``frames`` is a whole number in 1..MAX_FRAMES."""
    if isinstance(frames, bool) or not isinstance(frames, int | np.integer):
        raise StarVidError(f"frames must be a whole number, got {frames!r}")
    if not 1 <= frames <= MAX_FRAMES:
        raise StarVidError(f"frames must be between 1 and {MAX_FRAMES}, got {frames}")


def check_seed(seed: int) -> None:
    """Raise StarVidError unless ``seed`` is a whole number in 0..MAX_SEED."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise StarVidError(f"seed must be a whole number, got {seed!r}")
    if not 0 <= seed <= MAX_SEED:
        raise StarVidError(f"seed must be between 0 and {MAX_SEED}, got {seed}")


def describe_motion(obj: PlannedObject, still: float = 0.03) -> str:
    """Name an object's motion from its boxes: "left", "right", "rise", "hop", "still", ...

    Joined with "+" when several apply ("right+rise"). ``still`` is the smallest travel (in frame
    fractions) that counts as movement.
    """
    b = np.asarray(obj.boxes, dtype=float)
    c = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)
    size = np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
    parts = []
    dx, dy = c[-1] - c[0]
    if abs(dx) > still:
        parts.append("right" if dx > 0 else "left")
    line = c[0, 1] + (c[-1, 1] - c[0, 1]) * _times(len(b))  # straight from first to last
    if (line - c[:, 1]).max() > max(still, 0.25 * abs(dy)):
        parts.append("hop")
    elif abs(dy) > still:
        parts.append("rise" if dy < 0 else "descend")
    ratio = size[-1] / size[0]
    if ratio > 1.15:
        parts.append("approach")
    elif ratio < 1 / 1.15:
        parts.append("recede")
    return "+".join(parts) or "still"
