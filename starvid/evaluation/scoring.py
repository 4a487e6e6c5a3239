"""A suite item's facts checked against the detections of its video: per-category results.

``score_detections`` takes the raw detections of the frames read (one list per frame, labelled
with the phrases of ``ObjectFact.phrase``), filters them by the task's protocol (LVD or
T2V-CompBench thresholds, see ``rules``) and applies the task's rule. Each category gets a
``CategoryScore``: `passed` (the check holds), `score` (the benchmark's number: 0 or 1 for LVD's
tasks, T2V-CompBench's averaged frame score for its tasks) and `details` (counts, positions,
frame scores) to see why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from starvid.errors import StarVidError
from starvid.evaluation import rules
from starvid.evaluation.facts import COMPBENCH_TASKS, LVD_TASKS, Facts, SuiteItem
from starvid.evaluation.rules import Detection, Frames


@dataclass(frozen=True)
class Protocol:
    """How a benchmark reads a video: frames, thresholds and duplicate removal."""

    name: str
    frames: int  # evenly spaced frames read
    rounding: str  # "round" (LVD) or "floor" (T2V-CompBench) for the spaced frame positions
    score_threshold: float  # detections below are dropped
    text_threshold: float  # Grounding DINO: each word of the phrase must score above it
    nms_iou: float | None = None  # class-aware NMS at this IoU (LVD)
    duplicate_iou: float | None = None  # cross-label duplicates above this IoU (T2V-CompBench)


LVD = Protocol("lvd", 6, "round", score_threshold=0.1, text_threshold=0.25, nms_iou=0.1)
COMPBENCH = Protocol(
    "t2v-compbench", 16, "floor", score_threshold=0.4, text_threshold=0.25, duplicate_iou=0.9
)
PROTOCOLS: dict[str, Protocol] = {t: LVD for t in LVD_TASKS} | {
    t: COMPBENCH for t in COMPBENCH_TASKS
}


class CategoryScore(BaseModel):
    """One category's result for one video."""

    model_config = ConfigDict(extra="forbid")

    passed: bool
    score: float = Field(ge=0.0, le=1.0)
    details: dict[str, Any] = Field(default_factory=dict)


class DetectorScore(BaseModel):
    """A video's results: the frames read (indices into the video) and each category's score."""

    model_config = ConfigDict(extra="forbid")

    item_id: str
    task: str
    protocol: str
    detector: str | None = None
    frames: list[int]
    categories: dict[str, CategoryScore]

    def values(self) -> dict[str, float]:
        """Each category's score, the form ``stats.rate_table`` rows take per arm."""
        return {name: c.score for name, c in self.categories.items()}


def protocol_for(task: str) -> Protocol:
    """The protocol a task is scored with; the shapes world has its own exact scorer."""
    if task == "shapes":
        raise StarVidError(
            "shapes items are scored exactly by starvid.shapes.score.score_video "
            "(with starvid.evaluation.suites.shapes_groups), not by a detector"
        )
    return PROTOCOLS[task]


def filter_frame(dets: list[Detection], protocol: Protocol, one_per_label: bool) -> list[Detection]:
    """A frame's detections after the protocol's threshold and duplicate removal."""
    dets = rules.above_threshold(dets, protocol.score_threshold)
    if protocol.nms_iou is not None:
        dets = rules.class_aware_nms(dets, protocol.nms_iou)
    if protocol.duplicate_iou is not None:
        dets = rules.remove_duplicates(dets, protocol.duplicate_iou)
    return rules.best_per_label(dets) if one_per_label else dets


def score_detections(
    item: SuiteItem, frames: Frames, read: list[int], detector: str | None = None
) -> DetectorScore:
    """Score `item` from the raw detections of the video frames `read` (one list per frame)."""
    if len(frames) != len(read):
        raise StarVidError(f"{len(frames)} frames of detections for {len(read)} frames read")
    protocol = protocol_for(item.task)
    # LVD keeps one box per phrase (no tracker to tell instances apart) except for counting.
    one_per_label = protocol is LVD and item.task != "numeracy"
    kept = [filter_frame(f, protocol, one_per_label) for f in frames]
    categories = TASK_RULES[item.task](item.facts, kept)
    return DetectorScore(
        item_id=item.id,
        task=item.task,
        protocol=protocol.name,
        detector=detector,
        frames=list(read),
        categories=categories,
    )


def _result(passed: bool, score: float | None = None, **details: Any) -> CategoryScore:
    return CategoryScore(
        passed=passed, score=float(passed) if score is None else score, details=details
    )


# -- one rule per task ---------------------------------------------------------------------------


def _numeracy(facts: Facts, frames: Frames) -> dict[str, CategoryScore]:
    details, ok = {}, True
    for obj in facts.objects:
        counts = rules.counts_per_frame(frames, obj.phrase())
        seen = rules.majority_count(counts)
        ok &= seen == obj.count
        details[obj.phrase()] = {"asked": obj.count, "counts": counts, "majority": seen}
    return {"numeracy": _result(ok, objects=details)}


def _mostly_present(facts: Facts, frames: Frames) -> tuple[bool, dict]:
    """Each object detected in at least half of the frames (LVD's attribution check)."""
    share = {o.phrase(): float(np.mean(rules.present(frames, o.phrase()))) for o in facts.objects}
    return all(s >= 0.5 for s in share.values()), share


def _attribution(facts: Facts, frames: Frames) -> dict[str, CategoryScore]:
    ok, share = _mostly_present(facts, frames)
    return {"attribution": _result(ok, present_share=share)}


def _visibility(facts: Facts, frames: Frames) -> dict[str, CategoryScore]:
    details, ok = {}, True
    for obj in facts.objects:
        seen = rules.present(frames, obj.phrase())
        ok &= rules.visibility_holds(seen, appears=obj.visibility == "appears")
        details[obj.phrase()] = {"asked": obj.visibility, "present": seen}
    return {"visibility": _result(ok, objects=details)}


def _box(frames: Frames, position: int, label: str) -> rules.Box | None:
    if not frames:
        return None
    found = rules.boxes_of(frames[position], label)
    return max(found, key=lambda d: d.score).box if found else None


def _dynamics(facts: Facts, frames: Frames) -> dict[str, CategoryScore]:
    details: dict[str, Any] = {}
    ok = bool(frames)
    for obj in facts.objects:
        if obj.motion is None:
            continue
        start, end = _box(frames, 0, obj.phrase()), _box(frames, -1, obj.phrase())
        moved = None
        if start and end:
            (x0, y0), (x1, y1) = rules.center(start), rules.center(end)
            moved = rules.moved_toward(x1 - x0, y1 - y0, obj.motion)
        ok &= moved is not None
        details[obj.phrase()] = {"asked": obj.motion, "first": start, "last": end}
    for k, rel in enumerate(facts.relations):
        a, b = facts.objects[rel.subject].phrase(), facts.objects[rel.object].phrase()
        positions = {"first": [0], "last": [len(frames) - 1], "all": range(len(frames))}[rel.when]
        held = [_relation_at(frames, p, a, b, rel.relation, dominant_axis=False) for p in positions]
        ok &= bool(held) and all(held)
        details[f"relation {k}"] = {"asked": f"{a} {rel.relation} {b} ({rel.when})", "held": held}
    return {"dynamics": _result(ok, **details)}


def _relation_at(
    frames: Frames, p: int, a: str, b: str, relation: str, dominant_axis: bool
) -> bool:
    box_a, box_b = _box(frames, p, a), _box(frames, p, b)
    return bool(box_a and box_b) and rules.relation_holds(box_a, box_b, relation, dominant_axis)


def _sequential(facts: Facts, frames: Frames) -> dict[str, CategoryScore]:
    details, ok = {}, bool(frames)
    positions = rules.path_frames(len(frames))
    for obj in facts.objects:
        boxes = [_box(frames, p, obj.phrase()) for p in positions]
        regions = [rules.region_of(b) if b else None for b in boxes]
        ok &= regions == list(obj.path)
        details[obj.phrase()] = {"asked": list(obj.path), "seen": regions}
    return {"sequential": _result(ok, objects=details)}


def _generative_numeracy(facts: Facts, frames: Frames) -> dict[str, CategoryScore]:
    counts = [rules.counts_per_frame(frames, o.phrase()) for o in facts.objects]
    per_frame = rules.frame_count_scores(counts, [o.count for o in facts.objects])
    score = float(np.mean(per_frame)) if per_frame else 0.0
    asked = {
        o.phrase(): {"asked": o.count, "counts": c}
        for o, c in zip(facts.objects, counts, strict=True)
    }
    passed = bool(per_frame) and all(s == 1.0 for s in per_frame)
    return {"generative_numeracy": _result(passed, score, frame_scores=per_frame, objects=asked)}


def _spatial(facts: Facts, frames: Frames) -> dict[str, CategoryScore]:
    per_relation = []
    for rel in facts.relations:
        a, b = facts.objects[rel.subject].phrase(), facts.objects[rel.object].phrase()
        scores = [
            rules.spatial_frame_score(rules.boxes_of(f, a), rules.boxes_of(f, b), rel.relation)
            for f in frames
        ]
        per_relation.append(scores)
    flat = [s for scores in per_relation for s in scores]
    score = float(np.mean(flat)) if flat else 0.0
    passed = bool(flat) and all(s > 0.4 for s in flat)  # the relation holds in every frame
    return {"spatial_relationships": _result(passed, score, frame_scores=per_relation)}


def _motion_binding(facts: Facts, frames: Frames) -> dict[str, CategoryScore]:
    moves: list[float | None] = []
    details = {}
    for obj in facts.objects:
        track = rules.centroid_track(frames, obj.phrase())
        shift = rules.displacement(track)
        move = None if shift is None else (rules.moved_toward(*shift, obj.motion) or 0.0)
        moves.append(move)
        details[obj.phrase()] = {
            "asked": obj.motion,
            "displacement": shift,
            "track_points": len(track),
        }
    passed = all(m is not None and m > 0 for m in moves)
    return {"motion_binding": _result(passed, rules.motion_binding_score(moves), objects=details)}


def _action_binding(facts: Facts, frames: Frames) -> dict[str, CategoryScore]:
    ok, share = _mostly_present(facts, frames)
    note = "actions need a video-language model: only the subjects' presence is scored"
    return {"presence": _result(ok, present_share=share, note=note)}


TASK_RULES: dict[str, Callable[[Facts, Frames], dict[str, CategoryScore]]] = {
    "numeracy": _numeracy,
    "attribution": _attribution,
    "visibility": _visibility,
    "dynamics": _dynamics,
    "sequential": _sequential,
    "generative_numeracy": _generative_numeracy,
    "spatial_relationships": _spatial,
    "motion_binding": _motion_binding,
    "action_binding": _action_binding,
}
