"""The Studio's editing logic, error messages and generation job, without a browser."""

from __future__ import annotations

import json

import numpy as np
import pytest

from starvid.errors import StarVidError
from starvid.plan import fit_keyframes as keyframes_from_boxes
from starvid.plan import validate_plan
from starvid.ui import (
    apply_canvas,
    cancel_event,
    canvas_boxes,
    canvas_size,
    clear_keyframe,
    editor_plan,
    heatmap_for,
    import_plan_file,
    label_choices,
    new_editor,
    parse_chips,
    pick_map,
    repair_box,
    resample_editor,
    store_maps,
    stream_generation,
    user_message,
    word_subjects,
    write_plan_file,
)

PARSE = {
    "prompt": "a cat walking and a dog jumping",
    "subjects": [
        {"noun": "cat", "text": "cat", "count": 1, "verbs": ["walk"]},
        {"noun": "dog", "text": "dog", "count": 1, "verbs": ["jump"]},
    ],
    "scene": [],
}


def _plan(frames=9):
    last = frames - 1
    return validate_plan(
        {
            "frames": frames,
            "objects": [
                {"id": "cat-1", "noun": "cat", "subject": 0, "verbs": ["walk"],
                 "keyframes": {"0": [0.0, 0.5, 0.25, 0.75], str(last): [0.75, 0.5, 1.0, 0.75]}},
                {"id": "dog-1", "noun": "dog", "subject": 1, "verbs": ["jump"],
                 "keyframes": {"0": [0.5, 0.0, 0.75, 0.25]}},
            ],
        }
    )  # fmt: skip


@pytest.fixture
def editor():
    return new_editor(_plan(), PARSE, (64, 64))


def _boxes_by_id(state):
    return {o["id"]: np.asarray(o["boxes"]) for o in state["plan"]["objects"]}


def test_keyframes_of_a_linear_path_are_its_ends():
    boxes = _plan().objects[0].boxes
    assert sorted(keyframes_from_boxes(boxes)) == [0, 8]


def test_keyframes_keep_a_kink_and_reproduce_the_path():
    t = np.arange(9)
    x = np.where(t <= 3, t * 0.1, 0.3 - (t - 3) * 0.05)
    boxes = np.stack([x, x * 0, x + 0.2, x * 0 + 0.2], axis=1)
    kf = keyframes_from_boxes(boxes, tol=1e-3)
    assert sorted(kf) == [0, 3, 8]
    state = new_editor(validate_plan({"frames": 9, "objects": [
        {"id": "a-1", "noun": "a", "subject": 0, "boxes": boxes.tolist()}]}), None)  # fmt: skip
    np.testing.assert_allclose(state["plan"]["objects"][0]["boxes"], boxes, atol=1e-3)


def test_untouched_canvas_changes_nothing(editor):
    # what the canvas sends back: the same boxes rounded to canvas pixels
    state, notices, refresh = apply_canvas(editor, 4, canvas_boxes(editor, 4))
    assert state == editor and notices == [] and not refresh


def test_dragging_a_box_pins_a_keyframe_and_interpolates(editor):
    cw, ch = canvas_size(editor["size"])
    boxes = canvas_boxes(editor, 4)
    cat = boxes[0]
    assert cat["label"] == "cat-1"
    cat["ymin"] -= round(0.25 * ch)  # lift the cat by a quarter of the frame at frame 4
    cat["ymax"] -= round(0.25 * ch)
    state, notices, _ = apply_canvas(editor, 4, boxes)
    assert notices and notices[0].startswith("Pinned cat-1 at frame 4")
    assert sorted(map(int, state["keyframes"]["cat-1"])) == [0, 4, 8]
    b = _boxes_by_id(state)["cat-1"]
    assert b[4][1] == pytest.approx(0.25, abs=1 / ch)
    assert b[2][1] == pytest.approx((0.5 + 0.25) / 2, abs=1 / ch)  # halfway to the keyframe
    assert b[0][1] == pytest.approx(0.5) and b[8][1] == pytest.approx(0.5)
    np.testing.assert_allclose(_boxes_by_id(state)["dog-1"], _boxes_by_id(editor)["dog-1"])
    assert editor["keyframes"]["cat-1"].keys() == {"0", "8"}  # the input was not modified
    validate_plan(state["plan"])  # still a valid plan


def test_box_outside_the_frame_is_clamped_with_a_notice(editor):
    cw, ch = canvas_size(editor["size"])
    boxes = canvas_boxes(editor, 0)
    boxes[1].update(xmin=cw - 20, xmax=cw + 80)  # dog dragged off the right edge
    state, notices, refresh = apply_canvas(editor, 0, boxes)
    assert refresh and any("moved back inside the frame" in n for n in notices)
    assert _boxes_by_id(state)["dog-1"][0][2] == 1.0


def test_zero_size_box_is_repaired():
    box, note = repair_box([0.5, 0.5, 0.5, 0.5])
    assert box[2] - box[0] == pytest.approx(0.02) and box[3] - box[1] == pytest.approx(0.02)
    assert "width" in note and "height" in note
    box, note = repair_box([0.9, 0.9, 0.1, 0.1])  # corners swapped: just reordered
    assert box == [0.1, 0.1, 0.9, 0.9] and note == ""
    box, note = repair_box([1.0, 0.0, 1.0, 0.3])  # zero width at the edge stays inside
    assert box[2] <= 1.0 and box[2] - box[0] == pytest.approx(0.02)


def test_deleting_and_adding_boxes(editor):
    cw, ch = canvas_size(editor["size"])
    boxes = canvas_boxes(editor, 2)[:1]  # dog-1 deleted
    boxes.append({"label": "cat", "xmin": 10, "ymin": 10, "xmax": 60, "ymax": 60})
    boxes.append({"label": "horse", "xmin": 10, "ymin": 10, "xmax": 60, "ymax": 60})
    state, notices, refresh = apply_canvas(editor, 2, boxes)
    ids = [o["id"] for o in state["plan"]["objects"]]
    assert ids == ["cat-1", "cat-2"] and refresh
    new = state["plan"]["objects"][1]
    assert new["subject"] == 0 and new["verbs"] == ["walk"]
    np.testing.assert_allclose(new["boxes"], [[10 / cw, 10 / ch, 60 / cw, 60 / ch]] * 9)
    assert "Removed dog-1." in notices and "Added cat-2." in notices
    assert any("horse" in n and "ignored" in n for n in notices)
    assert label_choices(state)[0] == ["cat-1", "cat-2", "cat", "dog"]


def test_a_new_box_counts_once_labelled_even_with_an_existing_id(editor):
    cw, ch = canvas_size(editor["size"])
    drawn = {"label": "", "xmin": 300, "ymin": 300, "xmax": 400, "ymax": 380}
    boxes = [drawn] + canvas_boxes(editor, 0)  # the canvas lists the new box first
    state, notices, refresh = apply_canvas(editor, 0, boxes)
    assert state == editor and notices == [] and not refresh  # waiting for its label
    drawn["label"] = "cat-1"  # the label dialog offers the existing ids first
    state, notices, refresh = apply_canvas(editor, 0, boxes)
    assert [o["id"] for o in state["plan"]["objects"]] == ["cat-1", "dog-1", "cat-2"]
    assert notices == ["Added cat-2."] and refresh
    np.testing.assert_allclose(_boxes_by_id(state)["cat-1"], _boxes_by_id(editor)["cat-1"])
    np.testing.assert_allclose(
        _boxes_by_id(state)["cat-2"][0], [300 / cw, 300 / ch, 400 / cw, 380 / ch]
    )


def test_a_click_with_the_box_tool_adds_nothing(editor):
    boxes = canvas_boxes(editor, 0) + [{"label": "cat", "xmin": 30, "ymin": 30, "xmax": 31,
                                         "ymax": 30}]  # fmt: skip
    state, notices, refresh = apply_canvas(editor, 0, boxes)
    assert state["plan"] == editor["plan"] and refresh
    assert notices == ["A new box needs a size (drag to draw it); ignored."]


def test_deleting_every_box_keeps_the_plan(editor):
    state, notices, refresh = apply_canvas(editor, 0, [])
    assert state["plan"] == editor["plan"] and refresh
    assert "at least one box" in notices[0]


def test_clear_keyframe_and_resample(editor):
    boxes = canvas_boxes(editor, 4)
    boxes[0]["xmin"] += 100
    boxes[0]["xmax"] += 100
    state, _, _ = apply_canvas(editor, 4, boxes)
    cleared, notes = clear_keyframe(state, 4)
    assert notes == ["cat-1: keyframe 4 removed."]
    np.testing.assert_allclose(_boxes_by_id(cleared)["cat-1"], _boxes_by_id(editor)["cat-1"])
    short = resample_editor(state, 5)
    assert short["plan"]["frames"] == 5
    assert sorted(map(int, short["keyframes"]["cat-1"])) == [0, 2, 4]
    assert editor_plan(short).frames == 5
    assert clear_keyframe(editor, 3)[1] == []  # nothing pinned there


def test_plan_export_and_import_round_trip(editor, tmp_path):
    path = write_plan_file(editor)
    back = import_plan_file(path, editor, (64, 64))
    assert back["plan"] == editor["plan"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"frames": 4, "objects": [
        {"id": "a", "noun": "a", "subject": 0, "boxes": [[0.5, 0.5, 0.2, 0.9]] * 4}]}))  # fmt: skip
    with pytest.raises(StarVidError, match="objects.0.boxes"):
        import_plan_file(str(bad), editor, (64, 64))
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(StarVidError, match="not JSON"):
        import_plan_file(str(tmp_path / "junk.json"), editor, (64, 64))
    with pytest.raises(StarVidError, match="no plan yet"):
        editor_plan(None)


def test_user_messages_are_one_line_without_traceback():
    assert user_message(StarVidError("the prompt is empty")) == "the prompt is empty"
    oom = user_message(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore"))
    assert oom.startswith("out of memory") and "plan is kept" in oom
    other = user_message(KeyError("x\nTraceback (most recent call last):"))
    assert "\n" not in other and "internal error (KeyError" in other


def test_parse_chips_escape_and_bind_verbs():
    html = parse_chips({"prompt": "", "scene": ["field"], "subjects": [
        {"noun": "<b>cat", "text": "cats", "count": 3, "verbs": ["walk", "eat"]}]})  # fmt: skip
    assert "&lt;b&gt;cat" in html and "<b>cat" not in html.replace("<b>3 × &lt;b&gt;cat", "")
    assert "3 × " in html and html.index("walk") < html.index("eat") and "field" in html


def test_maps_by_step_and_heatmap(editor):
    run = {}
    store_maps(run, "guided", 1, {"cat": np.ones((9, 4, 4)), "walking": np.zeros((9, 4, 4))})
    store_maps(run, "guided", 3, {"cat": np.full((9, 4, 4), 2.0)})
    store_maps(run, "baseline", 1, {"cat": np.full((9, 4, 4), 0.5)})
    assert pick_map(run, "guided", "cat", 2)[1] == 1  # nearest recorded step before
    assert pick_map(run, "guided", "cat", None)[0].max() == 2.0
    assert pick_map(run, "guided", "dog", 1) is None
    fig = heatmap_for(run, editor, "cat", 4, 3)
    assert [a.text for a in fig.layout.annotations][:2] == ["guided", "baseline"]
    assert "step 1, 3" in fig.layout.title.text
    assert heatmap_for(run, editor, None, 0, 1) is None
    # a verb's map shows the boxes of the subject that does it
    editor = dict(editor, parse=dict(PARSE, word_subjects={"cat": 0, "walking": 0, "dog": 1}))
    store_maps(run, "guided", 3, {"walking": np.ones((9, 4, 4))})
    fig = heatmap_for(run, editor, "walking", 4, 3)
    assert [a.text for a in fig.layout.annotations if a.text.endswith("-1")] == ["cat-1"]


def test_word_subjects_follow_the_parse():
    from starvid.parsing import parse_prompt

    parsed = parse_prompt("a dog running and a dog jumping")
    assert word_subjects(parsed) == {"dog": 0, "running": 0, "dog#2": 1, "jumping": 1}


def test_stream_reports_a_missing_model_as_a_user_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    events = list(stream_generation("a cat walking", _plan(), "zeroscope", {"steps": 1}, False))
    assert [e[0] for e in events] == ["error"]
    assert isinstance(events[0][1], StarVidError)
    assert "zeroscope" in user_message(events[0][1])


def test_stream_arguments_pickle_for_zerogpu():
    # ZeroGPU pickles the GPU function's arguments into a forked worker
    import pickle

    from starvid.parsing import parse_prompt
    from starvid.settings import make_settings

    parsed = parse_prompt("a cat walking and a dog jumping")
    settings = make_settings({"steps": 2}).model_dump(exclude_unset=True)
    args = ("a cat walking and a dog jumping", _plan(4), "tiny", settings, True, parsed, "s1")
    back = pickle.loads(pickle.dumps(args))
    assert back[1] == args[1] and back[5].to_dict() == parsed.to_dict()


@pytest.mark.slow
def test_stream_cancel_stops_the_tiny_run():
    cancel_event("test-session").set()
    args = ("a cat walking and a dog jumping", _plan(4), "tiny", {"steps": 2, "frames": 4}, True)
    events = list(stream_generation(*args, cancel_key="test-session"))
    kind, error = events[-1]
    assert kind == "error" and isinstance(error, StarVidError) and "cancelled" in str(error)
    assert not [e for e in events if e[0] == "done"]


def test_build_app_builds():
    import gradio as gr

    from starvid.ui import build_app

    assert isinstance(build_app(), gr.Blocks)
