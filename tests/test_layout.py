"""Boxes to per-frame masks at any resolution (hard and coverage), time resampling, grouping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from starvid.errors import StarVidError
from starvid.layout import boxes_to_masks, noun_masks, plan_masks
from starvid.parsing import parse_prompt
from starvid.plan import validate_plan
from starvid.planning import heuristic_plan


def one_box_plan(boxes, frames=None):
    """A one-object plan with per-frame boxes (or keyframes given as a dict)."""
    obj = {"id": "cat-1", "noun": "cat", "subject": 0}
    if isinstance(boxes, dict):
        obj["keyframes"] = {str(k): v for k, v in boxes.items()}
    else:
        obj["boxes"] = boxes
    return validate_plan({"frames": frames or len(boxes), "objects": [obj]})


@pytest.fixture(scope="module")
def plan():
    return heuristic_plan(
        parse_prompt("three cats walking to the left and a dog jumping on the right"), frames=8
    )


def test_shape_dtype_range(plan):
    for coverage in (False, True):
        m = plan_masks(plan, height=16, width=24, coverage=coverage)
        assert m.shape == (4, 8, 16, 24) and m.dtype == torch.float32
        assert float(m.min()) >= 0.0 and float(m.max()) <= 1.0
    hard = plan_masks(plan, height=16, width=24)
    assert set(torch.unique(hard).tolist()) == {0.0, 1.0}


def test_hard_mask_is_pixel_centres_inside_box():
    m = boxes_to_masks(np.array([[0.25, 0.25, 0.75, 0.5]]), 8, 8)[0]
    expected = torch.zeros(8, 8)
    expected[2:4, 2:6] = 1  # rows 2,3 (centres 2.5, 3.5 < 4); columns 2..5
    assert torch.equal(m, expected)
    # a box that reaches a pixel centre exactly includes it; its far edge is excluded
    m = boxes_to_masks(np.array([[0.5 / 4, 0.0, 2.5 / 4, 1.0]]), 1, 4)[0, 0]
    assert m.tolist() == [1.0, 1.0, 0.0, 0.0]


def test_hard_mask_follows_the_box_per_frame(plan):
    m = plan_masks(plan, height=32, width=32)
    b = plan.boxes_array()
    for o in range(m.shape[0]):
        for f in (0, 7):
            ys, xs = torch.nonzero(m[o, f], as_tuple=True)
            cx, cy = (xs.float().mean() + 0.5) / 32, (ys.float().mean() + 0.5) / 32
            assert abs(cx - (b[o, f, 0] + b[o, f, 2]) / 2) < 1 / 32
            assert abs(cy - (b[o, f, 1] + b[o, f, 3]) / 2) < 1 / 32
            area = (b[o, f, 2] - b[o, f, 0]) * (b[o, f, 3] - b[o, f, 1]) * 32 * 32
            assert abs(float(m[o, f].sum()) - area) < 2 * 32 * (b[o, f, 2] - b[o, f, 0] + 0.1)


def test_coverage_mask_is_pixel_area_inside_box():
    box = np.array([[0.1, 0.0, 0.6, 0.5]])  # x from 0.4 to 2.4 pixels at width 4
    m = boxes_to_masks(box, 2, 4, coverage=True)[0]
    assert m[0].tolist() == pytest.approx([0.6, 1.0, 0.4, 0.0])
    assert m[1].tolist() == [0.0, 0.0, 0.0, 0.0]
    # its total is the box area in pixels
    plan = heuristic_plan(parse_prompt("two dogs sleeping"), frames=2)
    cov = plan_masks(plan, height=32, width=32, coverage=True)
    b = plan.boxes_array()
    area = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) * 32 * 32
    np.testing.assert_allclose(cov.sum((-2, -1)).numpy(), area, rtol=1e-4)


def test_tiny_box_covers_its_centre_pixel():
    box = np.array([[0.58, 0.28, 0.62, 0.32]])  # holds no pixel centre at 4x4
    for kind in ({"coverage": False}, {"coverage": True}):
        m = boxes_to_masks(box, 4, 4, **kind)[0]
        assert float(m[1, 2]) == 1.0
        assert float(m.sum()) == pytest.approx(1.0, abs=0.1)
    assert float(boxes_to_masks(box, 1, 1)[0, 0, 0]) == 1.0
    # a box on the last pixel border stays inside the map
    m = boxes_to_masks(np.array([[0.999, 0.999, 1.0, 1.0]]), 4, 4)[0]
    assert float(m[3, 3]) == 1.0 and float(m.sum()) == 1.0


def test_every_object_visible_at_attention_resolutions():
    plan = heuristic_plan(parse_prompt("twelve birds flying and three dogs sitting"), frames=4)
    for size in (4, 8, 16, 32):
        m = plan_masks(plan, height=size, width=size)
        assert bool((m.flatten(2).amax(-1) == 1).all()), size


def test_time_resampling(plan):
    m = plan_masks(plan, frames=15, height=16, width=16)
    assert m.shape == (4, 15, 16, 16)
    full = plan_masks(plan, height=16, width=16)
    assert torch.equal(m[:, 0], full[:, 0]) and torch.equal(m[:, -1], full[:, -1])
    assert torch.equal(plan_masks(plan, frames=8, height=16, width=16), full)
    assert plan_masks(plan, frames=1, height=4, width=4).shape == (4, 1, 4, 4)


def test_keyframe_plan_masks_move_between_keys():
    plan = one_box_plan({0: [0.0, 0.25, 0.25, 0.75], 4: [0.75, 0.25, 1.0, 0.75]}, frames=5)
    m = plan_masks(plan, height=8, width=8)
    first_cols = [int(torch.nonzero(m[0, f].amax(0))[0]) for f in range(5)]
    assert first_cols == sorted(first_cols) and first_cols[0] == 0 and first_cols[-1] == 6
    assert plan_masks(plan, frames=9, height=8, width=8).shape == (1, 9, 8, 8)


def test_noun_masks_group_instances_by_subject(plan):
    groups = noun_masks(plan, height=8, width=8, coverage=True)
    assert sorted(groups) == [0, 1]
    assert groups[0].shape == (3, 8, 8, 8) and groups[1].shape == (1, 8, 8, 8)
    all_masks = plan_masks(plan, height=8, width=8, coverage=True)
    assert torch.equal(groups[0], all_masks[:3]) and torch.equal(groups[1], all_masks[3:])
    assert noun_masks(plan, frames=3, height=4, width=4)[0].shape == (3, 3, 4, 4)


def test_bad_sizes():
    box = np.array([[0.1, 0.1, 0.5, 0.5]])
    with pytest.raises(StarVidError):
        boxes_to_masks(box, 0, 8)
    with pytest.raises(StarVidError):
        plan_masks(one_box_plan([[0.1, 0.1, 0.5, 0.5]]), frames=0)
