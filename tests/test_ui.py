"""The Studio without a browser: the editor's edits, what the app says, the settings form,
output hygiene, the job runner, and one app generate entering each module once."""

from __future__ import annotations

import json
import os
import pickle
import stat
import sys
import time

import numpy as np
import pytest

from starvid.errors import StarVidError
from starvid.parsing import parse_prompt
from starvid.pipelines import StepProgress
from starvid.plan import MAX_OBJECTS, MAX_PLAN_BYTES, validate_plan
from starvid.settings import GenerationSettings
from starvid.ui.editor import (
    add_object,
    apply_canvas,
    canvas_boxes,
    canvas_size,
    clear_keyframe,
    export_plan,
    import_plan,
    new_state,
    read_plan_upload,
    remove_object,
    repair_box,
    resample,
)
from starvid.ui.palette import object_palette
from starvid.ui.text import chips_html, rgb, unknown_words_html, user_message

PROMPT = "two red circles moving left and a blue square jumping"


@pytest.fixture(scope="module")
def parsed():
    return parse_prompt(PROMPT)


def _plan(frames=9):
    last = frames - 1
    return validate_plan(
        {
            "frames": frames,
            "objects": [
                {"id": "circle-1", "noun": "circle", "subject": 0, "verbs": ["move"],
                 "keyframes": {"0": [0.0, 0.5, 0.25, 0.75], str(last): [0.75, 0.5, 1.0, 0.75]}},
                {"id": "square-1", "noun": "square", "subject": 1, "verbs": ["jump"],
                 "keyframes": {"0": [0.5, 0.0, 0.75, 0.25]}},
            ],
        }
    )  # fmt: skip


@pytest.fixture
def state(parsed):
    return new_state(PROMPT, parsed, _plan(), (64, 64))


def _boxes(state, oid):
    return np.asarray(state.plan.object(oid).boxes)


def _colors(state):
    return object_palette(state.plan)


# -- the editor -------------------------------------------------------------------------------


def test_untouched_canvas_changes_nothing(state):
    # what the canvas sends back: the same boxes rounded to canvas pixels
    edit = apply_canvas(state, 4, canvas_boxes(state, 4, _colors(state)))
    assert edit.state == state and edit.notices == [] and not edit.refresh


def test_dragging_a_box_pins_a_keyframe_and_interpolates(state):
    cw, ch = canvas_size(state.size)
    boxes = canvas_boxes(state, 4, _colors(state))
    assert boxes[0]["label"] == "circle-1"
    boxes[0]["ymin"] -= round(0.25 * ch)  # lift the circle by a quarter of the frame at frame 4
    boxes[0]["ymax"] -= round(0.25 * ch)
    edit = apply_canvas(state, 4, boxes)
    assert edit.notices[0].startswith("Pinned circle-1 at frame 4")
    assert sorted(edit.state.plan.object("circle-1").keyframes) == [0, 4, 8]
    b = _boxes(edit.state, "circle-1")
    assert b[4][1] == pytest.approx(0.25, abs=1 / ch)
    assert b[2][1] == pytest.approx((0.5 + 0.25) / 2, abs=1 / ch)  # halfway to the keyframe
    assert b[0][1] == pytest.approx(0.5) and b[8][1] == pytest.approx(0.5)
    np.testing.assert_allclose(_boxes(edit.state, "square-1"), _boxes(state, "square-1"))
    assert sorted(state.plan.object("circle-1").keyframes) == [0, 8]  # the input stays


def test_pinned_keyframes_are_never_refitted(state):
    # two pins on a straight path: a refit would drop the middle ones as redundant
    colors = _colors(state)
    first = apply_canvas(state, 3, _shifted(canvas_boxes(state, 3, colors), 0, 0, 1)).state
    second = apply_canvas(first, 6, _shifted(canvas_boxes(first, 6, colors), 0, 0, 1)).state
    assert sorted(second.plan.object("circle-1").keyframes) == [0, 3, 6, 8]


def _shifted(boxes, index, dx, dy):
    boxes[index] = dict(boxes[index], xmin=boxes[index]["xmin"] + dx,
                        xmax=boxes[index]["xmax"] + dx, ymin=boxes[index]["ymin"] + dy * 20,
                        ymax=boxes[index]["ymax"] + dy * 20)  # fmt: skip
    return boxes


def test_box_outside_the_frame_is_clamped_with_a_notice(state):
    cw, _ = canvas_size(state.size)
    boxes = canvas_boxes(state, 0, _colors(state))
    boxes[1].update(xmin=cw - 20, xmax=cw + 80)  # the square dragged off the right edge
    edit = apply_canvas(state, 0, boxes)
    assert edit.refresh and any("moved back inside the frame" in n for n in edit.notices)
    assert _boxes(edit.state, "square-1")[0][2] == 1.0


def test_zero_size_box_is_repaired():
    box, note = repair_box([0.5, 0.5, 0.5, 0.5])
    assert box[2] - box[0] == pytest.approx(0.02) and box[3] - box[1] == pytest.approx(0.02)
    assert "width" in note and "height" in note
    box, note = repair_box([0.9, 0.9, 0.1, 0.1])  # corners swapped: just reordered
    assert box == [0.1, 0.1, 0.9, 0.9] and note == ""


def test_deleting_and_adding_boxes_updates_the_chips(state):
    cw, ch = canvas_size(state.size)
    boxes = canvas_boxes(state, 2, _colors(state))[:1]  # square-1 deleted
    boxes.append({"label": "circle", "xmin": 10, "ymin": 10, "xmax": 60, "ymax": 60})
    boxes.append({"label": "horse", "xmin": 10, "ymin": 10, "xmax": 60, "ymax": 60})
    edit = apply_canvas(state, 2, boxes)
    assert [o.id for o in edit.state.plan.objects] == ["circle-1", "circle-2"] and edit.refresh
    new = edit.state.plan.object("circle-2")
    assert new.subject == 0 and new.verbs == ["move"]
    np.testing.assert_allclose(new.boxes, [[10 / cw, 10 / ch, 60 / cw, 60 / ch]] * 9)
    assert "Removed square-1." in edit.notices and "Added circle-2." in edit.notices
    assert any("horse" in n and "ignored" in n for n in edit.notices)
    chips = chips_html(edit.state, _colors(edit.state))
    assert "2 × red circle" in chips and "0 × blue square" in chips


def test_a_new_box_counts_once_labelled_even_with_an_existing_id(state):
    drawn = {"label": "", "xmin": 300, "ymin": 300, "xmax": 400, "ymax": 380}
    boxes = [drawn] + canvas_boxes(state, 0, _colors(state))  # the canvas lists it first
    edit = apply_canvas(state, 0, boxes)
    assert edit.state == state and edit.notices == [] and not edit.refresh  # no label yet
    drawn["label"] = "circle-1"  # the label dialog offers the existing ids first
    edit = apply_canvas(state, 0, boxes)
    assert [o.id for o in edit.state.plan.objects] == ["circle-1", "square-1", "circle-2"]
    np.testing.assert_allclose(_boxes(edit.state, "circle-1"), _boxes(state, "circle-1"))


def test_a_click_with_the_box_tool_adds_nothing(state):
    click = {"label": "circle", "xmin": 30, "ymin": 30, "xmax": 31, "ymax": 30}
    edit = apply_canvas(state, 0, canvas_boxes(state, 0, _colors(state)) + [click])
    assert edit.state.plan == state.plan and edit.refresh
    assert edit.notices == ["A new box needs a size (drag to draw it); ignored."]


def test_deleting_every_box_keeps_the_plan(state):
    edit = apply_canvas(state, 0, [])
    assert edit.state.plan == state.plan and "at least one box" in edit.notices[0]
    assert "at least one box" in remove_object(remove_object(state, "square-1").state,
                                               "circle-1").notices[0]  # fmt: skip


def test_add_object_takes_a_free_spot_and_remove_takes_it_away(state):
    edit = add_object(state, "square", 2)
    new = edit.state.plan.object("square-2")
    assert new.subject == 1 and new.verbs == ["jump"] and sorted(new.keyframes) == [2]
    others = [o.boxes[2] for o in state.plan.objects]
    from starvid.boxes import box_iou

    assert box_iou(np.asarray([new.boxes[2]]), np.asarray(others)).max() == 0.0
    assert min(new.boxes[2]) >= 0.05 and max(new.boxes[2]) <= 0.95  # its label stays in view
    assert "2 × blue square" in chips_html(edit.state, object_palette(edit.state.plan))
    back = remove_object(edit.state, "square-2")
    assert back.state.plan == state.plan and back.notices == ["Removed square-2."]
    with pytest.raises(StarVidError, match="not a subject"):
        add_object(state, "horse", 0)


def test_clear_keyframe_and_resample(state):
    boxes = canvas_boxes(state, 4, _colors(state))
    boxes[0]["xmin"] += 100
    boxes[0]["xmax"] += 100
    moved = apply_canvas(state, 4, boxes).state
    cleared = clear_keyframe(moved, 4)
    assert cleared.notices == ["circle-1: your keyframe at frame 4 removed."]
    np.testing.assert_allclose(_boxes(cleared.state, "circle-1"), _boxes(state, "circle-1"))
    short = resample(moved, 5)
    assert short.plan.frames == 5 and sorted(short.plan.object("circle-1").keyframes) == [0, 2, 4]
    assert clear_keyframe(state, 3).notices[0].startswith("Nothing you pinned at frame 3")


def test_exported_plan_imports_back_with_its_keyframes(state, tmp_path):
    boxes = canvas_boxes(state, 5, _colors(state))
    boxes[1]["ymin"] += 150
    boxes[1]["ymax"] += 150
    edited = apply_canvas(state, 5, boxes).state
    path = tmp_path / "plan.json"
    path.write_text(export_plan(edited))
    back = import_plan(read_plan_upload(path), None, (64, 64), parse_prompt)
    for obj in edited.plan.objects:
        assert back.plan.object(obj.id).keyframes == obj.keyframes
        np.testing.assert_allclose(back.plan.object(obj.id).boxes, obj.boxes)
    assert back.prompt == PROMPT and back.parsed.to_dict() == edited.parsed.to_dict()
    assert json.loads(path.read_text())["objects"][1]["keyframes"].keys() == {"0", "5"}


def test_bad_plan_uploads_are_refused_in_one_line(state, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"frames": 4, "objects": [
        {"id": "a", "noun": "a", "subject": 0, "boxes": [[0.5, 0.5, 0.2, 0.9]] * 4}]}))  # fmt: skip
    with pytest.raises(StarVidError, match="objects.0.boxes"):
        read_plan_upload(bad)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(StarVidError, match="not JSON"):
        read_plan_upload(tmp_path / "junk.json")
    dog = {"id": "dog-1", "noun": "dog", "subject": 0, "boxes": [[0.1, 0.1, 0.3, 0.3]] * 4}
    other = validate_plan({"frames": 4, "objects": [dog]})
    with pytest.raises(StarVidError, match="is a 'dog'"):
        import_plan(other, state, (64, 64), parse_prompt)  # no prompt of its own to parse


def test_a_huge_plan_upload_is_refused_quickly(tmp_path):
    # 2,000 objects with keyframes each: a small file that expands to 1 M boxes
    objects = [{"id": f"o-{i}", "noun": "o", "subject": 0,
                "keyframes": {"0": [0.1, 0.1, 0.2, 0.2], "511": [0.7, 0.7, 0.8, 0.8]}}
               for i in range(2000)]  # fmt: skip
    path = tmp_path / "huge.json"
    path.write_text(json.dumps({"frames": 512, "objects": objects}))
    start = time.perf_counter()
    with pytest.raises(StarVidError, match=f"2000 objects; a plan holds at most {MAX_OBJECTS}"):
        read_plan_upload(path)
    assert time.perf_counter() - start < 0.5
    path.write_bytes(b" " * (MAX_PLAN_BYTES + 1))
    with pytest.raises(StarVidError, match="larger than 5 MB"):
        read_plan_upload(path)


# -- what the app says ------------------------------------------------------------------------


def test_chips_show_colour_direction_and_the_palette(state):
    colors = _colors(state)
    chips = chips_html(state, colors)
    assert "2 × red circle" not in chips  # the plan has one circle: counts follow the plan
    assert "1 × red circle" in chips and "1 × blue square" in chips
    assert "→ right" in chips and "· still" in chips  # the planned direction of each subject
    for oid, color in colors.items():
        assert f'data-object="{oid}" title="{oid}" style="background:{rgb(color)}"' in chips
    assert chips.index("move") < chips.index("square")  # verbs sit in their own subject's chip


def test_chips_escape_the_prompt(parsed):
    evil = parse_prompt("two <b>cats</b> walking")
    noun = evil.subjects[0].noun
    cat = {"id": "cat-1", "noun": noun, "subject": 0, "boxes": [[0.1, 0.1, 0.3, 0.3]] * 2}
    plan = validate_plan({"frames": 2, "objects": [cat]})
    html = chips_html(new_state("x", evil, plan, (8, 8)), object_palette(plan))
    assert "<b>cats" not in html


def test_unknown_words_are_marked():
    html = unknown_words_html("a cat & two red circles", ["cat"], "shapes")
    assert "<mark>cat</mark>" in html and "&amp;" in html and "<mark>red" not in html
    assert unknown_words_html("two red circles", [], "shapes") == ""


def test_examples_suit_their_backbone():
    from starvid.backbones import BACKBONES, load_backbone, unknown_words
    from starvid.ui.text import examples_for

    shapes = load_backbone("shapes", device="cpu")
    assert all(not unknown_words(p, shapes) for p in examples_for("shapes"))
    for name in ("zeroscope", "modelscope"):
        assert BACKBONES[name].needs_gpu
        assert any(unknown_words(p, shapes) for p in examples_for(name))  # open vocabulary


def test_backbone_menu_says_gpu_size_and_offline():
    from starvid.backbones import describe_backbones
    from starvid.ui.text import backbone_label

    labels = {r["name"]: backbone_label(r) for r in describe_backbones()}
    assert labels["shapes"] == "shapes · runs on a CPU · shipped"
    assert labels["zeroscope"].startswith("zeroscope · needs a GPU · ")
    # offline here: the hub models are not downloaded, and the menu says how much they weigh
    assert labels["modelscope"].endswith("3.7 GB download")


def test_user_messages_are_one_line_without_traceback():
    assert user_message(StarVidError("the prompt is empty")) == "the prompt is empty"
    oom = user_message(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore"))
    assert oom.startswith("out of memory") and "plan is kept" in oom
    other = user_message(KeyError("x\nTraceback (most recent call last):"))
    assert "\n" not in other and "internal error (KeyError" in other


def test_progress_says_the_step_phase_and_time_left():
    from starvid.run import RunEvent
    from starvid.ui.jobs import RunClock
    from starvid.ui.text import progress_html

    def progress(run, step):
        return RunEvent("running", StepProgress(run, step, 10, None, {}))

    clock = RunClock(runs=2, started=100.0)
    clock.event(RunEvent("loading"), now=100.0)
    assert "Loading the model" in progress_html(clock.view(now=104.0))  # never "step 0/N"
    clock.event(RunEvent("running"), now=110.0)
    for step in (1, 2):
        clock.event(progress("guided", step), now=110.0 + 2 * step)
    view = clock.view(now=114.0)
    assert (view.phase, view.step, view.total) == ("guided", 2, 10)
    assert view.remaining_s == pytest.approx(2.0 * 18) and view.fraction == pytest.approx(0.1)
    text = progress_html(view)
    assert "guided run: step 2/10" in text and "14 s elapsed" in text and "36 s left" in text
    clock.event(progress("baseline", 1), now=116.0)
    assert clock.view(now=116.0).fraction == pytest.approx(11 / 20)


# -- the settings form ------------------------------------------------------------------------


def test_every_setting_has_one_widget_or_is_cli_only():
    from starvid.ui.form import APP_SETTINGS, CLI_ONLY

    fields = set(GenerationSettings.model_fields)
    assert set(APP_SETTINGS) <= fields and set(CLI_ONLY) <= fields
    assert not set(APP_SETTINGS) & set(CLI_ONLY)
    assert set(APP_SETTINGS) | set(CLI_ONLY) == fields


def test_widgets_say_the_schema_line():
    from starvid.ui.form import APP_SETTINGS, make_widget

    for name in APP_SETTINGS:
        widget = make_widget(name, None)
        assert widget.info == GenerationSettings.model_fields[name].description
        assert widget.label and "\n" not in widget.info
    assert "overall guidance strength" in make_widget("step_size", 0.1).info
    assert "own pull" in make_widget("spatial_weight", 1.0).info


def test_backbone_switch_keeps_what_the_user_changed():
    from starvid.backbones import BACKBONES
    from starvid.ui.form import follow_backbone, initial_values

    shapes, tiny = BACKBONES["shapes"].defaults, BACKBONES["tiny"].defaults
    values = initial_values(shapes)
    assert follow_backbone(values, shapes, tiny) == {
        "steps": 10,
        "cfg_scale": 7.5,
        "step_size": 0.3,
        "guidance_steps": 3,
    }  # both draw 8 frames; neither saves memory
    values["steps"], values["step_size"] = 30, 0.05  # the user set steps; step size untouched
    assert follow_backbone(values, shapes, tiny) == {"cfg_scale": 7.5, "step_size": 0.3,
                                                     "guidance_steps": 3}  # fmt: skip


def test_settings_from_values_types_and_refuses_in_one_line():
    from starvid.backbones import BACKBONES
    from starvid.ui.form import initial_values, settings_from_values

    values = initial_values(BACKBONES["shapes"].defaults) | {"steps": 12.0, "seed": 3.0}
    settings = settings_from_values(values)
    assert settings.steps == 12 and isinstance(settings.steps, int) and settings.seed == 3
    with pytest.raises(StarVidError, match="Denoising steps"):
        settings_from_values(values | {"steps": None})
    with pytest.raises(StarVidError, match="invalid setting temperature"):
        settings_from_values(values | {"temperature": 0})


# -- output hygiene -----------------------------------------------------------------------------


def test_session_folders_are_private_and_named_safely(tmp_path):
    from starvid.ui.outputs import new_run_dir, remove_session, session_dir

    folder = session_dir("../../etc/passwd", tmp_path)
    assert folder.parent == tmp_path and ".." not in folder.name
    run = new_run_dir("../../etc/passwd", tmp_path)
    for path in (folder, run):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert session_dir("other", tmp_path) != folder
    remove_session("../../etc/passwd", tmp_path)
    assert not folder.exists()


def test_old_and_oversized_runs_are_deleted(tmp_path):
    from starvid.ui.outputs import cleanup, session_dir

    now = time.time()
    runs = []
    for i, age in enumerate((5000, 300, 200, 100)):
        run = session_dir(f"s{i % 2}", tmp_path) / f"run-{i}"
        run.mkdir()
        (run / "guided.mp4").write_bytes(b"x" * 1000)
        os.utime(run, (now - age, now - age))
        runs.append(run)
    deleted = cleanup(tmp_path, max_age_s=3600, max_bytes=2000, now=now)
    # the 5000 s old run by age, then the oldest remaining until 2000 bytes are left
    assert deleted[:2] == [runs[0], runs[1]] and runs[2].exists() and runs[3].exists()


def test_uploads_and_gradio_files_are_bounded():
    from starvid.ui.app import build_studio, launch_options
    from starvid.ui.outputs import MAX_AGE_S

    options = launch_options()
    assert options["max_file_size"] == "5mb" and MAX_PLAN_BYTES == 5 * 2**20
    demo, _ = build_studio()
    assert demo.delete_cache == (1800, MAX_AGE_S)


# -- the job runner ----------------------------------------------------------------------------


def test_a_request_cancelled_while_queued_never_runs():
    from starvid.ui.jobs import Jobs

    jobs = Jobs()
    ticket = jobs.request("a")
    assert jobs.request("a") is None  # one request at a time per session
    assert jobs.cancel("a") == "queued"
    claimed = jobs.claim("a")  # the queue hands the handler a worker afterwards
    assert claimed is ticket and claimed.state == "cancelled" and claimed.cancel.is_set()
    assert jobs.claim("a") is None and jobs.cancel("a") == "none"
    running = jobs.request("a")
    assert jobs.claim("a") is running and running.state == "running"
    assert jobs.running_elsewhere("b") and not jobs.running_elsewhere("a")
    assert jobs.cancel("a") == "running" and running.cancel.is_set()
    jobs.finish(running)
    assert jobs.wait("a", 0.1) and jobs.request("a") is not None


def test_stream_arguments_pickle_for_zerogpu(parsed):
    # ZeroGPU pickles the GPU function's arguments into a forked worker
    from starvid.backbones import BACKBONES
    from starvid.run import GenerationRequest, RunEvent
    from starvid.ui.form import initial_values, settings_from_values
    from starvid.ui.jobs import RunOutcome

    settings = settings_from_values(initial_values(BACKBONES["tiny"].defaults))
    request = GenerationRequest(parsed, "tiny", settings, _plan(4), True)
    back = pickle.loads(pickle.dumps((request, "s:1")))[0]
    assert back.plan == request.plan and back.parsed.to_dict() == parsed.to_dict()
    assert back.settings == settings and back.settings.model_fields_set == settings.model_fields_set
    # and what comes back from the worker: the run's events and its outcome
    step = StepProgress("guided", 1, 4, {"total": 1.0}, {"cat": np.ones((4, 2, 2))})
    event = pickle.loads(pickle.dumps(RunEvent("running", step)))
    assert event.step.maps["cat"].shape == (4, 2, 2) and event.step.losses == {"total": 1.0}
    failed = pickle.loads(pickle.dumps(RunOutcome(error=StarVidError("no"))))
    assert str(failed.error) == "no" and failed.result is None


def test_stream_reports_a_missing_model_as_a_user_error(monkeypatch, parsed):
    from starvid.run import GenerationRequest
    from starvid.ui.jobs import RunOutcome, stream_generation

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    request = GenerationRequest(parsed, "zeroscope", GenerationSettings(steps=1), _plan(), False)
    events = list(stream_generation(request, "t:1"))
    assert [e.phase for e in events[:-1]] == ["loading"]
    outcome = events[-1]
    assert isinstance(outcome, RunOutcome) and outcome.result is None
    assert isinstance(outcome.error, StarVidError) and "zeroscope" in user_message(outcome.error)


# -- one app generate, through the app's own handlers -------------------------------------------


def _count_calls(monkeypatch, owner, name: str) -> list:
    """Wrap ``owner.name`` (and every starvid module's binding of it) to count its calls."""
    original = getattr(owner, name)
    calls: list = []

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    for module in list(sys.modules.values()):
        if (getattr(module, "__name__", "") or "").startswith("starvid") and getattr(
            module, name, None
        ) is original:
            monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.slow
def test_one_app_generate_enters_each_module_once(monkeypatch):
    import gradio as gr

    import starvid.backbones
    import starvid.parsing
    import starvid.planning
    from starvid.ui.app import build_studio
    from starvid.ui.events_edit import EditEvents
    from starvid.ui.events_run import RunEvents

    _, ui = build_studio()
    request = gr.Request(session_hash="count-test")
    data = {w: None for w in ui.generate.settings.values()}
    from starvid.backbones import BACKBONES
    from starvid.ui.form import initial_values

    values = initial_values(BACKBONES["tiny"].defaults) | {"steps": 2, "frames": 4}
    data |= {ui.generate.settings[k]: v for k, v in values.items()}
    p = ui.prompt
    data |= {p.prompt: "a cat walking and a dog jumping", p.backbone: "tiny",
             p.planner: "heuristic", ui.editor: None, ui.live: None, ui.shown: 0,
             ui.edit.background: "guided", ui.generate.baseline: True,
             ui.inspect.inbox_kind: "inbox_share"}  # fmt: skip
    parses = _count_calls(monkeypatch, starvid.parsing, "parse_prompt")
    plans = _count_calls(monkeypatch, starvid.planning, "make_plan")
    loads = _count_calls(monkeypatch, starvid.backbones, "load_backbone")
    resolves = _count_calls(monkeypatch, GenerationSettings, "resolve")

    planned = EditEvents(ui).plan(data, request)
    assert (len(parses), len(plans), len(resolves)) == (1, 1, 0)
    data[ui.editor] = planned[ui.editor]
    del parses[:], plans[:], loads[:]
    run = RunEvents(ui)
    run.request(data, request)
    updates = list(run.generate(data, request))
    live = updates[-1][ui.live]
    assert live.report is not None and live.report.has_baseline
    assert (len(parses), len(plans), len(resolves), len(loads)) == (0, 0, 1, 1)
    assert live.report.plan.objects[0].boxes == planned[ui.editor].plan.objects[0].boxes
