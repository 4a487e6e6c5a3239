"""Plotly figures: the data they draw is the data they were given."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from starvid.plan import validate_plan
from starvid.viz import (
    PALETTE,
    heatmap_figure,
    inbox_share_figure,
    loss_figure,
    object_colors,
    trajectory_figure,
)


@pytest.fixture
def plan():
    return validate_plan(
        {
            "frames": 5,
            "objects": [
                {"id": "cat-1", "noun": "cat", "subject": 0, "verbs": ["walk"],
                 "keyframes": {"0": [0.0, 0.4, 0.2, 0.6], "4": [0.8, 0.4, 1.0, 0.6]}},
                {"id": "dog-1", "noun": "dog", "subject": 1, "verbs": [],
                 "keyframes": {"0": [0.4, 0.1, 0.6, 0.3]}},
            ],
        }
    )  # fmt: skip


def test_object_colors_distinct_and_stable():
    ids = [f"o-{i}" for i in range(len(PALETTE))]
    colors = object_colors(ids)
    assert len(set(colors.values())) == len(PALETTE)
    assert object_colors(ids[:3]) == {k: colors[k] for k in ids[:3]}


def test_trajectory_draws_each_centre_path(plan):
    fig = trajectory_figure(plan, current_frame=2, keyframes={"cat-1": [0, 4]}, aspect=0.5)
    paths = [t for t in fig.data if t.name in ("cat-1", "dog-1")]
    assert [t.name for t in paths] == ["cat-1", "dog-1"]
    np.testing.assert_allclose(paths[0].x, [0.1, 0.3, 0.5, 0.7, 0.9])
    np.testing.assert_allclose(paths[0].y, [0.5] * 5)
    np.testing.assert_allclose(paths[1].x, [0.5] * 5)
    diamonds = [t for t in fig.data if t.marker.symbol == "diamond"]
    assert len(diamonds) == 1 and list(diamonds[0].x) == pytest.approx([0.1, 0.9])
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(rects) == 2 and rects[0].x0 == pytest.approx(0.4)  # cat-1 at frame 2
    assert fig.layout.yaxis.range == (1, 0)  # image coordinates: y grows downwards
    assert fig.layout.yaxis.scaleratio == 0.5
    # the moving object gets a direction arrow, the still one does not
    assert len([a for a in fig.layout.annotations if a.showarrow]) == 1


def test_heatmap_panels_share_one_colour_scale():
    guided = np.zeros((4, 6), np.float32)
    guided[1, 2] = 0.8
    baseline = np.full((4, 6), 0.1, np.float32)
    frame = np.zeros((32, 48, 3), np.uint8)
    fig = heatmap_figure(
        {"guided": guided, "baseline": baseline},
        {"guided": frame, "baseline": frame},
        title="'cat'",
        boxes=[("cat-1", (0.1, 0.2, 0.5, 0.6))],
    )
    heat = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert len(heat) == 2
    assert all(t.zmax == pytest.approx(0.8) and t.zmin == 0 for t in heat)
    assert [t.showscale for t in heat] == [False, True]  # one colour bar
    assert heat[1].colorbar.title.text == "attention"
    np.testing.assert_allclose(np.asarray(heat[0].z), guided)
    np.testing.assert_allclose(heat[0].x, (np.arange(6) + 0.5) / 6)
    assert sum(isinstance(t, go.Image) for t in fig.data) == 2
    assert len([s for s in fig.layout.shapes if s.type == "rect"]) == 2  # box on each panel
    with pytest.raises(ValueError):
        heatmap_figure({})


def test_inbox_share_lines_guided_and_baseline():
    report = {
        "objects": [
            {"id": "cat-1", "inbox_share": {"guided": [0.5, 0.7], "baseline": [0.1, 0.3]}},
            {"id": "dog-1", "inbox_share": {"guided": [0.2, 0.2]}},
        ]
    }
    fig = inbox_share_figure(report)
    names = [t.name for t in fig.data]
    assert names == ["cat-1 guided (mean 0.60)", "cat-1 baseline (mean 0.20)",
                     "dog-1 guided (mean 0.20)"]  # fmt: skip
    assert fig.data[1].line.dash == "dash"
    empty = inbox_share_figure({"objects": []})
    assert not empty.data and "no in-box" in empty.layout.annotations[0].text


def test_loss_figure_places_iterations_within_steps():
    rows = [
        {"step": 0, "iteration": 0, "spatial": 0.8, "syntax": 0.4, "total": 1.2},
        {"step": 0, "iteration": 1, "spatial": 0.6, "syntax": 0.3, "total": 0.9},
        {"step": 1, "iteration": 0, "spatial": 0.5, "syntax": 0.2, "total": 0.7},
    ]
    fig = loss_figure(rows)
    total = next(t for t in fig.data if t.name == "total")
    assert list(total.x) == [0.0, 0.5, 1.0] and list(total.y) == [1.2, 0.9, 0.7]
    assert {t.name for t in fig.data} == {"total", "spatial", "syntax"}
    assert not loss_figure([]).data
