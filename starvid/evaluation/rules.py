"""Scoring rules over detections: pure functions, no model (tested on hand-made detections).

A ``Detection`` is one box a detector found for one of the phrases it was asked about, in
fractions of the frame (``[x0, y0, x1, y1]``, origin top-left). The rules follow the two
benchmarks this project measures against:

- LLM-grounded Video Diffusion (LVD): 6 evenly spaced frames, score threshold 0.1, class-aware
  NMS at IoU 0.1, one box per phrase except for counting; the count is the most frequent count
  over the frames; visibility, dynamics and sequential read where boxes are in chosen frames.
- T2V-CompBench: up to 16 evenly spaced frames, box threshold 0.4 (text threshold 0.25 for
  Grounding DINO), boxes of any phrase that overlap at IoU above 0.9 are duplicates; per frame
  an exact count scores 1, with two kinds 0.5 per kind counted right; spatial relations come
  from box centres (the larger axis of the offset decides), scored 1 - IoU when right.

Motion is read from box centroids: see ``centroid_track``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from starvid.boxes import iou  # the one IoU (0 when both boxes are empty)

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Detection:
    """One box found for `label` (the phrase asked for, e.g. "red car") with its `score`."""

    label: str
    score: float
    box: Box  # fractions of the frame, [x0, y0, x1, y1], origin top-left

    @property
    def center(self) -> tuple[float, float]:
        """Centre (x, y) of the box."""
        return center(self.box)


Frames = list[list[Detection]]  # detections of each frame read, in frame order


def center(box: Box) -> tuple[float, float]:
    """Centre (x, y) of a box."""
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


# -- which frames, which boxes -------------------------------------------------------------------


def frames_to_read(total: int, count: int, rounding: str = "round") -> list[int]:
    """`count` evenly spaced frame indices of a `total`-frame video, first and last included.

    ``rounding="round"`` rounds the spaced positions (LVD), ``"floor"`` truncates them
    (T2V-CompBench). A video with at most `count` frames is read whole.
    """
    if total <= count:
        return list(range(total))
    positions = np.linspace(0, total - 1, count)
    picked = np.round(positions) if rounding == "round" else np.floor(positions)
    return sorted({int(i) for i in picked})


def above_threshold(dets: list[Detection], threshold: float) -> list[Detection]:
    """The detections scoring at least `threshold`."""
    return [d for d in dets if d.score >= threshold]


def class_aware_nms(dets: list[Detection], iou_threshold: float) -> list[Detection]:
    """Non-maximum suppression within each label: best first, dropping boxes of the same label
    that overlap a kept one at IoU `iou_threshold` or more (LVD)."""
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(k.label != d.label or iou(k.box, d.box) < iou_threshold for k in kept):
            kept.append(d)
    return kept


def remove_duplicates(dets: list[Detection], iou_threshold: float) -> list[Detection]:
    """T2V-CompBench's duplicate filter, across labels: in detection order, a box overlapping a
    kept one at IoU above `iou_threshold` replaces it when it scores higher, else is dropped."""
    kept: list[Detection] = []
    for d in dets:
        for j, k in enumerate(kept):
            if iou(k.box, d.box) > iou_threshold:
                if d.score > k.score:
                    kept[j] = d
                break
        else:
            kept.append(d)
    return kept


def best_per_label(dets: list[Detection]) -> list[Detection]:
    """The highest-scoring box of each label (LVD, for every task but counting)."""
    best: dict[str, Detection] = {}
    for d in dets:
        if d.label not in best or d.score > best[d.label].score:
            best[d.label] = d
    return list(best.values())


def boxes_of(frame: list[Detection], label: str) -> list[Detection]:
    """The detections of one label in one frame."""
    return [d for d in frame if d.label == label]


def present(frames: Frames, label: str) -> list[bool]:
    """Per frame: is there a box of `label`?"""
    return [any(d.label == label for d in frame) for frame in frames]


# -- counting ------------------------------------------------------------------------------------


def counts_per_frame(frames: Frames, label: str) -> list[int]:
    """Boxes of `label` in each frame."""
    return [len(boxes_of(frame, label)) for frame in frames]


def majority_count(counts: list[int]) -> int:
    """The most frequent count over frames, the smallest on a tie (LVD's numeracy)."""
    if not counts:
        return 0
    tally = Counter(counts)
    top = max(tally.values())
    return min(c for c, k in tally.items() if k == top)


def frame_count_scores(counts: list[list[int]], asked: list[int]) -> list[float]:
    """T2V-CompBench's per-frame numeracy score.

    `counts[k][f]` is the number of boxes of kind k in frame f; each kind counted exactly adds
    1 / (number of kinds): 1 for one kind, 0.5 per kind for two.
    """
    share = 1.0 / len(asked)
    frames = len(counts[0]) if counts else 0
    return [
        sum(share for per_kind, n in zip(counts, asked, strict=True) if per_kind[f] == n)
        for f in range(frames)
    ]


# -- relations -----------------------------------------------------------------------------------

_AXIS = {"left of": (0, -1), "right of": (0, 1), "above": (1, -1), "below": (1, 1)}


def relation_holds(a: Box, b: Box, relation: str, dominant_axis: bool) -> bool:
    """Is box `a` `relation` box `b` ("left of", "right of", "above", "below")?

    Compares box centres. With `dominant_axis` (T2V-CompBench) the offset must also be larger
    along the relation's axis than across it; without (LVD) only that axis counts.
    """
    axis, sign = _AXIS[relation]
    ca, cb = center(a), center(b)
    along = (ca[axis] - cb[axis]) * sign
    across = abs(ca[1 - axis] - cb[1 - axis])
    return along > 0 and (not dominant_axis or along > across)


def spatial_frame_score(first: list[Detection], second: list[Detection], relation: str) -> float:
    """T2V-CompBench's 2D spatial score of one frame, in [0, 1].

    Both objects missing 0, one missing 0.2, both present but no pair of boxes in the relation
    0.4, else 0.4 + 0.6 (1 - IoU) of the best pair (pairs ranked by the mean of 1 - IoU and the
    mean detection score).
    """
    if not first and not second:
        return 0.0
    if not first or not second:
        return 0.2
    right = [
        (0.5 * (1 - iou(a.box, b.box)) + 0.25 * (a.score + b.score), 1 - iou(a.box, b.box))
        for a in first
        for b in second
        if relation_holds(a.box, b.box, relation, dominant_axis=True)
    ]
    if not right:
        return 0.4
    return 0.4 + 0.6 * max(right)[1]


# -- motion, visibility, paths -------------------------------------------------------------------


def centroid_track(frames: Frames, label: str) -> list[tuple[int, float, float]]:
    """The path of one object of `label`: (frame position, x, y) of its box centre per frame.

    It starts at the best-scoring box of the first frame that has one, then follows the box of
    that label nearest its previous centre; frames without a box are skipped. Unlike the point
    tracker T2V-CompBench uses (dense points on the object, compensated by the background's
    motion), this has no background compensation (a panning camera moves every object), takes
    identity from the nearest centroid (two objects of one kind that cross may swap), and a box
    that grows or shrinks on one side moves its centre.
    """
    track: list[tuple[int, float, float]] = []
    for f, frame in enumerate(frames):
        mine = boxes_of(frame, label)
        if not mine:
            continue
        if not track:
            x, y = max(mine, key=lambda d: d.score).center
        else:
            _, px, py = track[-1]
            x, y = min((d.center for d in mine), key=lambda c: (c[0] - px) ** 2 + (c[1] - py) ** 2)
        track.append((f, x, y))
    return track


def displacement(track: list[tuple[int, float, float]]) -> tuple[float, float] | None:
    """Net (dx, dy) of a track from its first to its last point; None under two points."""
    if len(track) < 2:
        return None
    return track[-1][1] - track[0][1], track[-1][2] - track[0][2]


def moved_toward(dx: float, dy: float, direction: str, min_shift: float = 0.0) -> float | None:
    """The distance moved along `direction` when it exceeds `min_shift`, else None.

    Only the direction's own axis counts (T2V-CompBench's rule): "right" is dx > min_shift.
    """
    along = {"left": -dx, "right": dx, "up": -dy, "down": dy}[direction]
    return along if along > min_shift else None


def motion_binding_score(moves: list[float | None]) -> float:
    """T2V-CompBench's motion-binding video score from each object's move.

    Per object: the distance it moved the asked way (0.0 when it was found but moved
    otherwise), or None when it was not found. With s the mean over objects (missing ones
    count 0) the score is 0.2 + 0.8 s, or 0 when no object was found at all.
    """
    if all(m is None for m in moves):
        return 0.0
    return 0.2 + 0.8 * float(np.mean([m or 0.0 for m in moves]))


def visibility_holds(seen: list[bool], appears: bool) -> bool:
    """LVD's visibility check over the frames read (the two frames around the middle are
    ignored): "appears" is absent in the first part and present in the second, "disappears"
    the reverse."""
    half = len(seen) // 2
    first, second = any(seen[: max(half - 1, 0)]), any(seen[half + 1 :])
    return (not first and second) if appears else (first and not second)


def region_of(box: Box) -> str:
    """The quadrant of a box centre: "upper left", "upper right", "lower left", "lower right"."""
    x, y = center(box)
    return f"{'upper' if y < 0.5 else 'lower'} {'left' if x < 0.5 else 'right'}"


def path_frames(n: int) -> tuple[int, int, int]:
    """The frame positions LVD's sequential check reads: first, middle (n // 2) and last."""
    return 0, n // 2, n - 1
