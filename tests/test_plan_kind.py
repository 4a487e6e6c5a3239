"""Layout-only plans (issue 24): every box held where it starts, chosen by the ``plan_kind``
setting once at the edge (``prepare_run``), so the report records the plan that guided."""

from __future__ import annotations

import json

import numpy as np
import pytest

from starvid.cli import build_parser
from starvid.parsing import parse_prompt
from starvid.planning import heuristic_plan
from starvid.run import GenerationRequest, run_generation
from starvid.settings import GenerationSettings, settings_from_flags

PROMPT = "a dog running to the right"


@pytest.fixture(scope="module")
def parsed():
    return parse_prompt(PROMPT)


def test_layout_only_plans_keep_every_box_where_it_starts(parsed):
    plan = heuristic_plan(parsed, frames=8)
    moving = plan.boxes_array()
    assert np.abs(moving[:, -1] - moving[:, 0]).max() > 0.05  # the trajectory moves
    held = plan.layout_only()
    boxes = held.boxes_array()
    assert np.allclose(boxes, moving[:, :1]), "every frame's box is the first frame's"
    assert [(o.id, o.subject, o.verbs) for o in held.objects] == [
        (o.id, o.subject, o.verbs) for o in plan.objects
    ]
    assert all(o.keyframes == {0: tuple(o.boxes[0])} for o in held.objects)


def test_a_layout_run_records_the_plan_it_used(parsed, tmp_path):
    settings = GenerationSettings(steps=2, frames=4, plan_kind="layout")
    request = GenerationRequest(parsed, "tiny", settings, device="cpu")
    result = run_generation(request, tmp_path / "run")
    report = json.loads(result.files["report"].read_text())
    assert report["settings"]["plan_kind"] == "layout"
    boxes = np.asarray([o["boxes"] for o in report["plan"]["objects"]])
    assert np.allclose(boxes, boxes[:, :1])
    saved = json.loads(result.files["plan"].read_text())
    assert np.allclose(np.asarray([o["boxes"] for o in saved["objects"]]), boxes)
    # the same request with trajectory plans moves its boxes: the setting is what held them
    request = GenerationRequest(
        parsed, "tiny", settings.model_copy(update={"plan_kind": "trajectory"}), device="cpu"
    )
    moved = json.loads(run_generation(request, tmp_path / "t").files["report"].read_text())
    boxes = np.asarray([o["boxes"] for o in moved["plan"]["objects"]])
    assert np.abs(boxes[:, -1] - boxes[:, 0]).max() > 0.05


def test_the_plan_kind_is_a_cli_flag():
    args = build_parser().parse_args(["generate", PROMPT, "--plan-kind", "layout"])
    assert settings_from_flags(args).plan_kind == "layout"
