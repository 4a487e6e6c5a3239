"""Scoring rules on hand-made detections, by value (no detector weights)."""

from __future__ import annotations

import pytest

from starvid.errors import StarVidError
from starvid.evaluation import rules
from starvid.evaluation.facts import Facts, ObjectFact, RelationFact, SuiteItem
from starvid.evaluation.rules import Detection
from starvid.evaluation.scoring import COMPBENCH, LVD, filter_frame, score_detections


def box_at(x: float, y: float, half: float = 0.05) -> tuple[float, float, float, float]:
    return (x - half, y - half, x + half, y + half)


def det(label: str, x: float, y: float, score: float = 0.9, half: float = 0.05) -> Detection:
    return Detection(label, score, box_at(x, y, half))


def item(task: str, *objects: ObjectFact, relations=()) -> SuiteItem:
    facts = Facts(objects=list(objects), relations=list(relations))
    return SuiteItem(id="t-1", suite="test", task=task, prompt="p", facts=facts)


# -- frames and boxes ------------------------------------------------------------------------


def test_frames_read_are_evenly_spaced_like_each_benchmark():
    assert rules.frames_to_read(16, 6) == [0, 3, 6, 9, 12, 15]
    assert rules.frames_to_read(24, 6) == [0, 5, 9, 14, 18, 23]  # LVD rounds
    assert rules.frames_to_read(24, 16, "floor") == [
        0, 1, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 23,
    ]  # fmt: skip
    assert rules.frames_to_read(8, 16, "floor") == list(range(8))
    assert rules.frames_to_read(6, 6) == list(range(6))


def test_iou_threshold_nms_and_duplicates():
    a, b = (0.0, 0.0, 0.5, 0.5), (0.25, 0.25, 0.75, 0.75)
    assert rules.iou(a, b) == pytest.approx(0.0625 / 0.4375)
    assert rules.iou(a, (0.6, 0.6, 0.9, 0.9)) == 0.0
    assert rules.iou((0.1, 0.1, 0.1, 0.2), (0.1, 0.1, 0.1, 0.2)) == 0.0  # empty boxes

    found = [Detection("dog", s, box) for s, box in [(0.05, a), (0.1, a), (0.3, b)]]
    assert [d.score for d in rules.above_threshold(found, 0.1)] == [0.1, 0.3]

    dogs = [Detection("dog", 0.4, a), Detection("dog", 0.8, b), Detection("cat", 0.5, a)]
    far = Detection("dog", 0.2, (0.8, 0.8, 0.95, 0.95))
    kept = rules.class_aware_nms([*dogs, far], 0.1)  # IoU 0.14 >= 0.1: the weaker dog goes
    assert [(d.label, d.score) for d in kept] == [("dog", 0.8), ("cat", 0.5), ("dog", 0.2)]
    assert len(rules.class_aware_nms(dogs, 0.2)) == 3  # 0.14 < 0.2: all stay

    near = (0.0, 0.0, 0.5, 0.52)  # IoU with a: 0.96
    dup = [Detection("dog", 0.5, a), Detection("cat", 0.7, near), Detection("dog", 0.6, b)]
    assert [(d.label, d.score) for d in rules.remove_duplicates(dup, 0.9)] == [
        ("cat", 0.7), ("dog", 0.6),
    ]  # fmt: skip
    weaker_later = [Detection("dog", 0.5, a), Detection("cat", 0.4, near)]
    assert rules.remove_duplicates(weaker_later, 0.9) == weaker_later[:1]
    assert rules.best_per_label(dogs) == [dogs[1], dogs[2]]


def test_protocol_filters_in_order():
    frame = [det("dog", 0.2, 0.2, 0.9), det("dog", 0.21, 0.2, 0.8), det("dog", 0.7, 0.7, 0.05)]
    assert filter_frame(frame, LVD, one_per_label=False) == frame[:1]  # NMS, threshold 0.1
    two = [det("dog", 0.2, 0.2, 0.5), det("dog", 0.7, 0.7, 0.9), det("cat", 0.5, 0.5, 0.3)]
    assert filter_frame(two, LVD, one_per_label=True) == [two[1], two[2]]
    # T2V-CompBench: threshold 0.4, no NMS within a label, cross-label duplicates only
    overlap = [det("dog", 0.2, 0.2, 0.5), det("dog", 0.23, 0.2, 0.6), det("cat", 0.2, 0.2, 0.45)]
    assert filter_frame(overlap, COMPBENCH, one_per_label=False) == overlap[:2]


# -- counting --------------------------------------------------------------------------------


def test_counting_rules():
    assert rules.majority_count([3, 3, 3, 2, 1, 0]) == 3
    assert rules.majority_count([2, 2, 3, 3, 1]) == 2  # a tie goes to the smaller count
    assert rules.majority_count([]) == 0
    frames = [[det("dog", 0.2, 0.5), det("dog", 0.6, 0.5), det("cat", 0.4, 0.2)], []]
    assert rules.counts_per_frame(frames, "dog") == [2, 0]
    assert rules.frame_count_scores([[2, 2, 1], [3, 0, 3]], [2, 3]) == [1.0, 0.5, 0.5]
    assert rules.frame_count_scores([[1, 2, 2]], [2]) == [0.0, 1.0, 1.0]
    assert rules.frame_count_scores([[0, 0], [0, 0]], [1, 1]) == [0.0, 0.0]


# -- relations -------------------------------------------------------------------------------


def test_relations_from_box_centres():
    a, b = box_at(0.2, 0.5), box_at(0.6, 0.4)
    assert rules.relation_holds(a, b, "left of", dominant_axis=True)
    assert rules.relation_holds(b, a, "right of", dominant_axis=True)
    assert not rules.relation_holds(a, b, "right of", dominant_axis=False)
    high, low = box_at(0.45, 0.1), box_at(0.5, 0.9)
    assert rules.relation_holds(high, low, "left of", dominant_axis=False)  # LVD: x only
    assert not rules.relation_holds(high, low, "left of", dominant_axis=True)  # mostly above
    assert rules.relation_holds(high, low, "above", dominant_axis=True)
    assert rules.relation_holds(low, high, "below", dominant_axis=True)
    assert not rules.relation_holds(a, a, "left of", dominant_axis=False)


def test_spatial_frame_scores():
    dog, cat = [det("dog", 0.2, 0.5)], [det("cat", 0.7, 0.5)]
    assert rules.spatial_frame_score([], [], "left of") == 0.0
    assert rules.spatial_frame_score(dog, [], "left of") == 0.2
    assert rules.spatial_frame_score(dog, cat, "right of") == 0.4
    assert rules.spatial_frame_score(dog, cat, "left of") == pytest.approx(1.0)
    a = Detection("dog", 0.9, (0.0, 0.0, 0.5, 0.5))
    b = Detection("cat", 0.9, (0.25, 0.1, 0.75, 0.6))  # overlapping, a left of b
    overlap = rules.iou(a.box, b.box)
    assert rules.spatial_frame_score([a], [b], "left of") == pytest.approx(
        0.4 + 0.6 * (1 - overlap)
    )
    # among right pairs the best by (1 - IoU) and score is kept
    far = Detection("cat", 0.5, box_at(0.9, 0.25))
    assert rules.spatial_frame_score([a], [b, far], "left of") == pytest.approx(1.0)
    # ... ranked by the mean of 1 - IoU and the detection score: a sure overlapping pair (0.5 *
    # 0.75 + 0.45) beats a clear but unsure one (0.5 * 1 + 0.23), whose 1 - IoU is higher
    unsure = Detection("cat", 0.01, box_at(0.9, 0.25))
    assert rules.spatial_frame_score([a], [b, unsure], "left of") == pytest.approx(
        0.4 + 0.6 * (1 - overlap)
    )


# -- motion, visibility, paths ---------------------------------------------------------------


def test_centroid_track_follows_the_nearest_box():
    frames = [
        [det("dog", 0.2, 0.5, 0.9), det("dog", 0.8, 0.5, 0.5), det("cat", 0.5, 0.5)],
        [],  # missed frame: skipped
        [det("dog", 0.7, 0.5, 0.9), det("dog", 0.3, 0.52, 0.4)],
        [det("dog", 0.4, 0.55, 0.3), det("dog", 0.65, 0.5, 0.95)],
    ]
    track = rules.centroid_track(frames, "dog")
    assert [(f, round(x, 3), round(y, 3)) for f, x, y in track] == [
        (0, 0.2, 0.5), (2, 0.3, 0.52), (3, 0.4, 0.55),
    ]  # fmt: skip
    assert rules.displacement(track) == pytest.approx((0.2, 0.05))
    assert rules.displacement(track[:1]) is None
    assert rules.centroid_track(frames, "horse") == []


def test_direction_and_motion_binding_scores():
    assert rules.moved_toward(0.2, 0.05, "right") == pytest.approx(0.2)
    assert rules.moved_toward(0.2, 0.05, "left") is None
    assert rules.moved_toward(0.0, -0.3, "up") == pytest.approx(0.3)
    assert rules.moved_toward(0.0, 0.3, "down", min_shift=0.4) is None
    assert rules.motion_binding_score([0.3, None]) == pytest.approx(0.2 + 0.8 * 0.15)
    assert rules.motion_binding_score([0.3, 0.1]) == pytest.approx(0.2 + 0.8 * 0.2)
    assert rules.motion_binding_score([0.0, 0.0]) == pytest.approx(0.2)
    assert rules.motion_binding_score([None, None]) == 0.0


def test_visibility_and_regions():
    f, t = False, True
    assert rules.visibility_holds([f, f, t, t, t, t], appears=True)
    assert rules.visibility_holds([f, f, t, t, f, f], appears=False) is False
    assert not rules.visibility_holds([f, f, t, f, f, f], appears=True)  # gone by the end
    assert rules.visibility_holds([t, t, t, t, f, f], appears=False)  # middle frames ignored
    assert not rules.visibility_holds([t, f, f, f, f, t], appears=False)
    assert not rules.visibility_holds([t, t, t, t, t, t], appears=True)
    assert rules.region_of(box_at(0.2, 0.3)) == "upper left"
    assert rules.region_of(box_at(0.8, 0.7)) == "lower right"
    assert rules.path_frames(6) == (0, 3, 5)


# -- each task from detections ---------------------------------------------------------------


def test_lvd_numeracy_counts_the_majority_after_threshold_and_nms():
    dogs = [0.2, 0.5, 0.8]
    frames = []
    for n in [3, 3, 2, 3, 4, 3]:
        frame = [det("dog", x, 0.5) for x in (dogs + [0.5])[:n]]
        frame += [det("dog", 0.21, 0.5, 0.5)]  # a near copy of the first: NMS removes it
        frame += [det("dog", 0.5, 0.9, 0.05)]  # below the 0.1 threshold
        frames.append(frame)
    res = score_detections(
        item("numeracy", ObjectFact(noun="dog", count=3)), frames, list(range(6))
    )
    num = res.categories["numeracy"]
    assert num.passed and num.score == 1.0 and res.protocol == "lvd"
    assert num.details["objects"]["dog"]["counts"] == [3, 3, 2, 3, 3, 3]  # NMS merged two at x=.5
    wrong = score_detections(
        item("numeracy", ObjectFact(noun="dog", count=2)), frames, list(range(6))
    )
    assert not wrong.categories["numeracy"].passed and wrong.values() == {"numeracy": 0.0}


def test_lvd_attribution_visibility_dynamics_sequential():
    red, blue = ObjectFact(noun="car", color="red"), ObjectFact(noun="ball", color="blue")
    frames = [
        [det("red car", 0.3, 0.5)] + ([det("blue ball", 0.7, 0.5)] if f < 3 else [])
        for f in range(6)
    ]
    res = score_detections(item("attribution", red, blue), frames, list(range(6)))
    assert res.categories["attribution"].passed  # the ball in 3 of 6 frames is enough
    frames[2] = frames[2][:1]
    res = score_detections(item("attribution", red, blue), frames, list(range(6)))
    assert not res.categories["attribution"].passed
    assert res.categories["attribution"].details["present_share"] == {
        "red car": 1.0,
        "blue ball": 1 / 3,
    }

    appears = ObjectFact(noun="dog", visibility="appears")
    late = [[] if f < 3 else [det("dog", 0.5, 0.5)] for f in range(6)]
    assert score_detections(item("visibility", appears), late, list(range(6))).values() == {
        "visibility": 1.0
    }
    early = late[::-1]
    assert score_detections(item("visibility", appears), early, list(range(6))).values() == {
        "visibility": 0.0
    }

    right = ObjectFact(noun="dog", motion="right")
    moving = [[det("dog", 0.2 + 0.1 * f, 0.5)] for f in range(6)]
    assert (
        score_detections(item("dynamics", right), moving, list(range(6)))
        .categories["dynamics"]
        .passed
    )
    moving[-1] = []  # LVD needs the object in the first and the last frame
    assert (
        not score_detections(item("dynamics", right), moving, list(range(6)))
        .categories["dynamics"]
        .passed
    )
    # two objects: the dog starts left of the cat and ends right of it
    rel = [RelationFact(subject=0, relation="left of", object=1, when="first"),
           RelationFact(subject=0, relation="right of", object=1, when="last")]  # fmt: skip
    passing = [[det("dog", 0.2 + 0.12 * f, 0.5), det("cat", 0.5, 0.5)] for f in range(6)]
    two = item("dynamics", ObjectFact(noun="dog"), ObjectFact(noun="cat"), relations=rel)
    res = score_detections(two, passing, list(range(6)))
    assert res.categories["dynamics"].passed
    assert res.categories["dynamics"].details["relation 1"]["held"] == [True]
    staying = [[det("dog", 0.2, 0.5), det("cat", 0.5, 0.5)] for _ in range(6)]
    assert not score_detections(two, staying, list(range(6))).categories["dynamics"].passed

    path = ObjectFact(noun="ball", path=["lower left", "lower right", "upper right"])
    xy = [(0.2, 0.8), (0.4, 0.8), (0.6, 0.8), (0.8, 0.8), (0.8, 0.5), (0.8, 0.2)]
    frames = [[det("ball", x, y)] for x, y in xy]
    res = score_detections(item("sequential", path), frames, list(range(6)))
    assert res.categories["sequential"].passed  # frames 0, 3 and 5
    assert res.categories["sequential"].details["objects"]["ball"]["seen"] == list(path.path)
    frames[3] = [det("ball", 0.3, 0.8)]
    assert (
        not score_detections(item("sequential", path), frames, list(range(6)))
        .categories["sequential"]
        .passed
    )


def test_compbench_numeracy_spatial_motion_and_action():
    dogs, cats = ObjectFact(noun="dog", count=2), ObjectFact(noun="cat", count=1)
    frames = []
    for f in range(16):
        frame = [det("dog", 0.2, 0.5), det("dog", 0.5, 0.5, 0.6)]
        frame += [det("cat", 0.8, 0.5)] if f % 2 == 0 else [det("cat", 0.8, 0.5, 0.3)]  # < 0.4
        frames.append(frame)
    res = score_detections(item("generative_numeracy", dogs, cats), frames, list(range(16)))
    num = res.categories["generative_numeracy"]
    assert res.protocol == "t2v-compbench" and not num.passed
    assert num.score == pytest.approx(0.75) and num.details["frame_scores"][:2] == [1.0, 0.5]

    left = [RelationFact(subject=0, relation="left of", object=1)]
    spatial = item(
        "spatial_relationships", ObjectFact(noun="dog"), ObjectFact(noun="cat"), relations=left
    )
    frames = [[det("dog", 0.2, 0.5), det("cat", 0.8, 0.5)] for _ in range(8)]
    frames += [[det("dog", 0.9, 0.5), det("cat", 0.5, 0.5)] for _ in range(4)]  # wrong: 0.4
    frames += [[det("cat", 0.5, 0.5)] for _ in range(4)]  # dog missing: 0.2
    res = score_detections(spatial, frames, list(range(16)))
    sp = res.categories["spatial_relationships"]
    assert sp.score == pytest.approx((8 * 1.0 + 4 * 0.4 + 4 * 0.2) / 16) and not sp.passed
    assert (
        score_detections(spatial, frames[:8], list(range(8)))
        .categories["spatial_relationships"]
        .passed
    )

    motion = item(
        "motion_binding",
        ObjectFact(noun="dog", motion="right"),
        ObjectFact(noun="cat", motion="up"),
    )
    frames = [[det("dog", 0.2 + 0.02 * f, 0.5), det("cat", 0.5, 0.8 - 0.01 * f)] for f in range(16)]
    res = score_detections(motion, frames, list(range(16)))
    mb = res.categories["motion_binding"]
    assert mb.passed and mb.score == pytest.approx(0.2 + 0.8 * (0.3 + 0.15) / 2)
    frames = [[det("dog", 0.5 - 0.02 * f, 0.5)] for f in range(16)]  # wrong way, cat missing
    mb = score_detections(motion, frames, list(range(16))).categories["motion_binding"]
    assert not mb.passed and mb.score == pytest.approx(0.2)
    assert mb.details["objects"]["cat"]["displacement"] is None

    acting = item(
        "action_binding", ObjectFact(noun="man", action="run"), ObjectFact(noun="dog", action="sit")
    )
    frames = [[det("man", 0.3, 0.5), det("dog", 0.7, 0.5)] for _ in range(16)]
    res = score_detections(acting, frames, list(range(16)))
    assert list(res.categories) == ["presence"] and res.categories["presence"].passed
    assert "video-language model" in res.categories["presence"].details["note"]


def test_scoring_refuses_shapes_items_and_misaligned_frames():
    shapes = item("shapes", ObjectFact(noun="circle", color="red", motion="left"))
    with pytest.raises(StarVidError, match="starvid.shapes.score"):
        score_detections(shapes, [[]], [0])
    with pytest.raises(StarVidError, match="2 frames of detections for 3 frames read"):
        score_detections(item("numeracy", ObjectFact(noun="dog")), [[], []], [0, 1, 2])
