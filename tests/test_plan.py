"""The Plan schema: each rule by value, keyframes kept through every path, hostile files."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starvid.cli import main
from starvid.errors import StarVidError
from starvid.plan import (
    MAX_OBJECTS,
    MAX_PLAN_BYTES,
    fit_keyframes,
    load_plan,
    read_plan_file,
    validate_plan,
)

BOX = [0.1, 0.2, 0.4, 0.6]


def _obj(oid="cat-1", noun="cat", subject=0, **kw):
    return {"id": oid, "noun": noun, "subject": subject, "verbs": ["walk"], **kw}


def _plan(*objects, frames=4):
    return {"frames": frames, "objects": list(objects) or [_obj(boxes=[BOX] * frames)]}


def _refused(data, *needles):
    with pytest.raises(StarVidError) as info:
        validate_plan(data)
    text = str(info.value)
    assert text.startswith("invalid plan") and "\n" not in text
    for needle in needles:
        assert needle in text, text
    return text


# -- each rule, by value ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "box, field",
    [
        ([-0.01, 0.2, 0.4, 0.6], "x0=-0.01 is outside [0, 1]"),
        ([0.1, 0.2, 1.2, 0.6], "x1=1.2 is outside [0, 1]"),
        ([0.1, 1.5, 0.4, 1.6], "y0=1.5 is outside [0, 1]"),
        ([0.4, 0.2, 0.1, 0.6], "x0=0.4 must be smaller than x1=0.1"),
        ([0.1, 0.6, 0.4, 0.6], "y0=0.6 must be smaller than y1=0.6"),
        ([0.1, 0.2, math.nan, 0.6], "not a finite number"),
    ],
)
def test_every_coordinate_is_checked(box, field):
    _refused(_plan(_obj(boxes=[BOX, BOX, box, BOX])), "objects.0.boxes.2", field)


def test_ids_are_unique():
    a, b = _obj(boxes=[BOX] * 4), _obj(boxes=[BOX] * 4)
    _refused(_plan(a, b), "objects.1 (cat-1)", "id 'cat-1' is used twice")


def test_one_box_per_frame():
    _refused(_plan(_obj(boxes=[BOX] * 3)), "objects.0 (cat-1).boxes", "has 3 boxes", "4 frames")


def test_keyframes_inside_the_plans_frames():
    data = _plan(_obj(keyframes={"0": BOX, "4": BOX}))
    _refused(data, "keyframes: frame 4 is outside 0..3")


def test_boxes_and_keyframes_must_agree():
    kf = {"0": [0.0, 0.0, 0.2, 0.2], "3": [0.6, 0.0, 0.8, 0.2]}
    boxes = [[0.0, 0.0, 0.2, 0.2], [0.2, 0.0, 0.4, 0.2], [0.4, 0.0, 0.6, 0.2], [0.6, 0.0, 0.8, 0.2]]
    plan = validate_plan(_plan(_obj(keyframes=kf, boxes=boxes)))
    assert plan.objects[0].keyframes == {0: tuple(kf["0"]), 3: tuple(kf["3"])}
    boxes[2] = [0.5, 0.0, 0.7, 0.2]
    _refused(
        _plan(_obj(keyframes=kf, boxes=boxes)), "frame 2 disagrees with the object's keyframes"
    )


def test_needs_boxes_or_keyframes_and_objects():
    _refused(_plan(_obj()), "needs 'boxes' (one per frame) or 'keyframes'")
    _refused({"frames": 4, "objects": []}, "objects")
    _refused({"frames": 0, "objects": [_obj(boxes=[])]}, "frames")
    _refused({**_plan(), "version": 2}, "version 2 is not supported")
    _refused({**_plan(), "colour": "red"}, "colour")


def test_plan_size_is_bounded():
    many = [_obj(oid=f"cat-{i}", boxes=[BOX] * 2) for i in range(MAX_OBJECTS + 1)]
    _refused(_plan(*many, frames=2), "objects", f"at most {MAX_OBJECTS}")
    with pytest.raises(StarVidError, match="larger than 5 MB"):
        load_plan(b" " * (MAX_PLAN_BYTES + 1))


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[" * 100_000 + "]" * 100_000, "not a plan's JSON"),  # RecursionError inside json
        ('{"frames": ' + "9" * 5000 + ', "objects": []}', "not a plan's JSON"),  # int limit
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_hostile_plan_files_are_one_line_errors(tmp_path, text, needle):
    path = tmp_path / "plan.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(StarVidError, match=needle) as info:
        read_plan_file(path)
    assert "\n" not in str(info.value)


# -- keyframes survive every path -------------------------------------------------------------


KEYED = {
    "frames": 9,
    "objects": [
        _obj(keyframes={"0": [0.0, 0.5, 0.2, 0.7], "3": [0.5, 0.1, 0.7, 0.3], "8": BOX}),
        _obj(oid="dog-1", noun="dog", subject=1, boxes=[[0.5, 0.5, 0.7, 0.7]] * 9),
    ],
}


def test_keyframes_are_kept_and_boxes_derived_from_them():
    plan = validate_plan(KEYED)
    cat = plan.objects[0]
    assert sorted(cat.keyframes) == [0, 3, 8]
    assert cat.boxes[3] == pytest.approx((0.5, 0.1, 0.7, 0.3))
    assert cat.boxes[1] == pytest.approx((0.5 / 3, 0.5 - 0.4 / 3, 0.2 + 0.5 / 3, 0.7 - 0.4 / 3))
    again = load_plan(plan.to_json())
    assert again.objects[0].keyframes == cat.keyframes and again == plan
    assert "keyframes" not in plan.to_dict()["objects"][1]  # a planner's path stays boxes only


def test_pin_unpin_and_resample_keep_the_users_keyframes():
    plan = validate_plan(KEYED)
    pinned = plan.pin("cat-1", 5, (0.3, 0.3, 0.5, 0.5))
    assert sorted(pinned.objects[0].keyframes) == [0, 3, 5, 8]
    assert pinned.objects[0].boxes[5] == (0.3, 0.3, 0.5, 0.5)
    # the dog's planned path becomes keyframes only where it is pinned: ends kept, then the pin
    dog = pinned.pin("dog-1", 4, (0.1, 0.1, 0.3, 0.3)).object("dog-1")
    assert sorted(dog.keyframes) == [0, 4, 8] and dog.boxes[8] == (0.5, 0.5, 0.7, 0.7)
    assert sorted(pinned.unpin("cat-1", 3).objects[0].keyframes) == [0, 5, 8]
    lone = pinned.unpin("dog-1", 0).object("dog-1")
    assert sorted(lone.keyframes) == [8] and lone.boxes[0] == (0.5, 0.5, 0.7, 0.7)
    assert pinned.unpin("dog-1", 0).unpin("dog-1", 8).object("dog-1") == lone  # never the last
    short = pinned.resample(5)  # frames 0, 3, 5, 8 of 9 -> 0, 2, 2, 4 of 5 (the later wins)
    assert sorted(short.objects[0].keyframes) == [0, 2, 4]
    assert short.objects[0].keyframes[4] == pytest.approx(tuple(BOX))


def test_fitted_keyframes_of_a_planners_path():
    path = [[0.1 * f, 0.1, 0.1 * f + 0.2, 0.3] for f in range(5)]
    assert sorted(fit_keyframes(path)) == [0, 4]


def test_pinned_keyframes_round_trip_through_the_cli(tmp_path, capsys):
    """An exported plan with pinned keyframes runs and comes back with the same keyframes."""
    plan = validate_plan(KEYED).pin("cat-1", 5, (0.3, 0.3, 0.5, 0.5))
    src = tmp_path / "plan.json"
    src.write_text(plan.to_json(indent=2))
    prompt = "a cat walking and a dog sitting"
    args = ["generate", prompt, "--backbone", "tiny", "--plan", str(src), "--steps", "2"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0, capsys.readouterr().err
    back = read_plan_file(tmp_path / "run" / "plan.json")
    assert back.objects[0].keyframes == plan.objects[0].keyframes
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert (
        report["plan"]["objects"][0]["keyframes"]
        == json.loads(plan.to_json())["objects"][0]["keyframes"]
    )


# -- property: only the project's error escapes -----------------------------------------------


def _mutations():
    numbers = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.text(max_size=5),
        st.none(),
        st.lists(st.floats(min_value=-1, max_value=2), max_size=5),
    )
    paths = st.sampled_from(
        [
            ("frames",),
            ("version",),
            ("objects", 0, "id"),
            ("objects", 0, "subject"),
            ("objects", 0, "boxes", 1),
            ("objects", 0, "boxes", 1, 2),
            ("objects", 0, "keyframes"),
            ("objects", 1, "keyframes", "8"),
            ("objects", 1, "keyframes", "99"),
            ("objects",),
        ]
    )
    return st.lists(st.tuples(paths, numbers), min_size=1, max_size=4)


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_mutated_plans_load_or_give_one_line(mutations):
    data = json.loads(json.dumps({**KEYED, "objects": KEYED["objects"][::-1]}))
    for path, value in mutations:
        target = data
        try:
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        plan = load_plan(json.dumps(data))
    except StarVidError as exc:
        assert "\n" not in str(exc)
        return
    for obj in plan.objects:  # what loads is a valid plan
        assert len(obj.boxes) == plan.frames
        assert all(0 <= v <= 1 for box in obj.boxes for v in box)
