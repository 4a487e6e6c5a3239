"""The Studio's editing path, second pass (issue 27), without a browser: the user's pins and
unpinning, model switches that resample without pinning, what Generate refuses, the notice bar,
the chips of a long prompt, the boxes' colours and the symbols a closed model never saw."""

from __future__ import annotations

import numpy as np
import pytest

from starvid.errors import StarVidError
from starvid.parsing import parse_prompt
from starvid.plan import validate_plan
from starvid.ui.editor import apply_canvas, canvas_boxes, clear_keyframe, new_state, resample
from starvid.ui.palette import object_palette
from starvid.ui.text import chips_html, unknown_words_html

PROMPT = "two red circles moving left and a blue square jumping"


@pytest.fixture(scope="module")
def parsed():
    return parse_prompt(PROMPT)


@pytest.fixture
def state(parsed):
    return new_state(PROMPT, parsed, _jump_plan(), (64, 64))


def _boxes(state, oid):
    return np.asarray(state.plan.object(oid).boxes)


def _colors(state):
    return object_palette(state.plan)


def _jump_plan(frames=9):
    """circle-1 moving right, square-1 jumping (a planner's path: boxes only, apex at 4)."""
    lift = [0.0, 0.1, 0.2, 0.3, 0.4, 0.3, 0.2, 0.1, 0.0]
    square = [[0.5, 0.6 - h, 0.7, 0.8 - h] for h in lift[:frames]]
    circle = [[0.05 * f, 0.1, 0.05 * f + 0.2, 0.3] for f in range(frames)]
    return validate_plan(
        {
            "frames": frames,
            "objects": [
                {"id": "circle-1", "noun": "circle", "subject": 0, "verbs": ["move"],
                 "boxes": circle},
                {"id": "square-1", "noun": "square", "subject": 1, "verbs": ["jump"],
                 "boxes": square},
            ],
        }
    )  # fmt: skip


def _drag(state, oid, frame, dx_px):
    boxes = canvas_boxes(state, frame, _colors(state))
    box = next(b for b in boxes if b["label"] == oid)
    box["xmin"] += dx_px
    box["xmax"] += dx_px
    return apply_canvas(state, frame, boxes).state


def test_unpin_leaves_other_objects_and_the_planners_keyframes(parsed):
    state = new_state(PROMPT, parsed, _jump_plan(), (64, 64))
    moved = _drag(state, "circle-1", 4, 60)  # the square's apex is a planner keyframe at 4
    cleared = clear_keyframe(moved, 4)
    assert cleared.notices == ["circle-1: your keyframe at frame 4 removed."]
    np.testing.assert_allclose(_boxes(cleared.state, "square-1"), _boxes(state, "square-1"))
    np.testing.assert_allclose(_boxes(cleared.state, "circle-1"), _boxes(state, "circle-1"))
    # pinning the apex itself and unpinning it gives the planner's jump back
    apex = clear_keyframe(_drag(state, "square-1", 4, -40), 4).state
    np.testing.assert_allclose(_boxes(apex, "square-1"), _boxes(state, "square-1"), atol=1e-9)
    assert clear_keyframe(state, 4).notices[0].startswith("Nothing you pinned at frame 4")


def test_resampling_there_and_back_gives_the_same_plan(parsed):
    state = new_state(PROMPT, parsed, _jump_plan(), (64, 64))
    long = resample(state, 24)
    assert long.plan.frames == 24 and not any(o.keyframes for o in long.plan.objects)
    assert resample(long, 9).plan == state.plan
    pinned = resample(_drag(state, "circle-1", 4, 60), 24)
    assert pinned.pins["circle-1"].keys() == {round(4 * 23 / 8)}


def _new_value(update: dict, key, old):
    """A handler's new value for ``key``, or ``old`` when it left it alone (or skipped it)."""
    value = update.get(key, old)
    return old if isinstance(value, dict) and value.get("__type__") == "update" else value


@pytest.mark.slow
def test_a_model_switch_resamples_without_pinning():
    import gradio as gr

    from starvid.backbones import BACKBONES
    from starvid.ui.app import build_studio
    from starvid.ui.events_edit import EditEvents
    from starvid.ui.form import initial_values

    _, ui = build_studio()
    h, p, e, settings = EditEvents(ui), ui.prompt, ui.edit, ui.generate.settings
    request = gr.Request(session_hash="switch-test")
    values = initial_values(BACKBONES["shapes"].defaults)
    data = {settings[k]: v for k, v in values.items()}
    data |= {p.prompt: PROMPT, p.backbone: "shapes", p.planner: "heuristic", ui.editor: None,
             ui.live: None, ui.shown: 0, e.background: "guided",
             ui.active_backbone: "shapes"}  # fmt: skip
    planned = h.plan(data, request)[ui.editor]
    data |= {ui.editor: planned, ui.shown: 3}

    def switch(name, before):
        nonlocal data
        data |= {p.backbone: name, ui.active_backbone: before}
        out = h.backbone(data, request)
        data |= {w: out[w] for w in settings.values() if w in out}
        data |= {ui.editor: out[ui.editor], ui.active_backbone: name}
        # the page then sends the frames change and the canvas's echo of what was drawn
        got = h.frames(data, request)
        data[ui.editor] = _new_value(got, ui.editor, data[ui.editor])
        drawn = out[ui.editor]
        echo = {"boxes": canvas_boxes(drawn, 3, object_palette(drawn.plan))}
        got = h.canvas(data | {e.canvas: echo}, request)
        data[ui.editor] = _new_value(got, ui.editor, data[ui.editor])
        return data[ui.editor]

    state = switch("zeroscope", "shapes")
    assert state.plan.frames == BACKBONES["zeroscope"].defaults.frames
    assert not state.pins and not any(o.keyframes for o in state.plan.objects)
    back = switch("shapes", "zeroscope")
    assert back.plan == planned.plan and not back.pins


def test_generate_refuses_an_empty_prompt_box(state):
    from starvid.ui.events_run import generation_input

    with pytest.raises(StarVidError, match="prompt box is empty.*two red circles"):
        generation_input(state, "", "shapes", {}, True)
    with pytest.raises(StarVidError, match="changed since it was planned"):
        generation_input(state, "a blue square", "shapes", {}, True)


def test_a_long_notice_is_one_line_with_the_rest_folded():
    from starvid.ui.text import notice_html

    html = notice_html([f"note {i}" for i in range(30)])
    first, folded = html.split("<details>")
    assert "note 0" in first and "note 1<" not in first
    assert "<summary>29 more</summary>" in folded and "note 29" in folded
    assert 'class="sv-close"' in html and notice_html([]) == ""


def test_boxes_take_the_colour_the_prompt_names():
    from starvid.ui.palette import NAMED_COLORS

    parsed = parse_prompt("two red circles moving left and a square jumping")
    colors = object_palette(_plan3(), parsed)
    red = np.asarray(NAMED_COLORS["red"])
    for oid in ("circle-1", "circle-2"):
        r, g, b = colors[oid]
        assert r > g + 60 and r > b + 60, (oid, colors[oid])  # a shade of red
    assert colors["circle-1"] != colors["circle-2"]
    assert np.linalg.norm(np.subtract(colors["square-1"], red)) > 90  # no red for the square


def _plan3():
    box = [0.1, 0.1, 0.3, 0.3]
    return validate_plan(
        {
            "frames": 2,
            "objects": [
                {"id": "circle-1", "noun": "circle", "subject": 0, "keyframes": {"0": box}},
                {"id": "circle-2", "noun": "circle", "subject": 0,
                 "keyframes": {"0": [0.5, 0.5, 0.7, 0.7]}},
                {"id": "square-1", "noun": "square", "subject": 1, "keyframes": {"0": box}},
            ],
        }
    )  # fmt: skip


def test_chips_fold_the_subjects_a_plan_left_out():
    from starvid.planning import make_plan

    prompt = " and ".join(["two red circles moving left"] * 20)
    parsed = parse_prompt(prompt)
    plan = make_plan(parsed, frames=4, planner="heuristic")
    html = chips_html(new_state(prompt, parsed, plan, (32, 32)), object_palette(plan, parsed))
    assert "0 ×" not in html
    assert html.count('class="sv-chip"') == len({o.subject for o in plan.objects})
    left_out = len(parsed.subjects) - len({o.subject for o in plan.objects})
    assert left_out > 0 and f"+{left_out} more subject(s) not planned" in html


def test_symbols_are_marked_as_unknown_for_the_shapes_model():
    from starvid.ui.events_edit import unknown_words_for

    unknown = unknown_words_for("two red circles moving left 🚀🚀", "shapes")
    assert unknown == ["🚀🚀"]
    assert "<mark>🚀🚀</mark>" in unknown_words_html("two red circles 🚀🚀", unknown, "shapes")
    assert unknown_words_for("two red circles 🚀", "zeroscope") == []


def test_objects_of_one_colour_in_several_subjects_get_distinct_shades():
    prompt = "a red circle moving left and a red square jumping"
    parsed = parse_prompt(prompt)
    box = [0.1, 0.1, 0.3, 0.3]
    plan = validate_plan(
        {
            "frames": 2,
            "objects": [
                {"id": "circle-1", "noun": "circle", "subject": 0, "keyframes": {"0": box}},
                {"id": "square-1", "noun": "square", "subject": 1, "keyframes": {"0": box}},
            ],
        }
    )
    colors = object_palette(plan, parsed)
    assert colors["circle-1"] != colors["square-1"]
    assert all(r > g + 40 and r > b + 40 for r, g, b in colors.values())


@pytest.mark.slow
def test_the_app_warms_up_the_parser_and_the_planners_model(caplog):
    """The first Plan loaded spaCy and the LLM (18 s behind a spinner): the app loads both in
    the background while the page opens."""
    from starvid.parsing.nlp import load_nlp
    from starvid.planning import embedded_model_path
    from starvid.planning.llm_models import _MODELS, _close_models
    from starvid.ui import warm_up

    _close_models()  # as a fresh app process finds them: nothing loaded
    load_nlp.cache_clear()
    thread = warm_up()
    thread.join(timeout=120)
    assert not thread.is_alive() and "warm-up failed" not in caplog.text
    assert str(embedded_model_path()) in {str(p) for p in _MODELS}
    assert load_nlp.cache_info().currsize == 1
