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


def _report(plan, objects, losses=()):
    from starvid.report import RunReport

    return RunReport(prompt="p", backbone="tiny", seed=0, settings={}, plan=plan, frames=5,
                     objects=objects, losses=list(losses))  # fmt: skip


def test_inbox_share_lines_guided_and_baseline(plan):
    report = _report(plan, [
        {"id": "cat-1", "noun": "cat", "inbox_share": {"guided": [0.5, 0.7, None],
                                                       "baseline": [0.1, 0.3, 0.2]},
         "inbox_share_final": {}},
        {"id": "dog-1", "noun": "dog", "inbox_share": {"guided": [0.2, 0.2]},
         "inbox_share_final": {}},
    ])  # fmt: skip
    colors = {"cat-1": (1, 2, 3), "dog-1": (4, 5, 6)}
    fig = inbox_share_figure(report, colors=colors)
    names = [t.name for t in fig.data]
    # the legend's means are the report's own, a missing frame included as the report counts it
    means = report.share_means()
    assert means["cat-1"]["guided"] == pytest.approx(0.4)
    assert names == ["cat-1 guided (mean 0.40)", "cat-1 baseline (mean 0.20)",
                     "dog-1 guided (mean 0.20)"]  # fmt: skip
    assert fig.data[1].line.dash == "dash" and fig.data[0].line.color == "rgb(1,2,3)"
    empty = inbox_share_figure(_report(plan, []))
    assert not empty.data and "no in-box" in empty.layout.annotations[0].text


def test_loss_figure_shows_raw_weighted_and_share_per_term():
    from starvid.report import LossRow

    rows = [
        LossRow(step=0, iteration=0, spatial=0.8, syntax=0.0, total=0.8, spatial_raw=0.8,
                syntax_raw=0.0, spatial_share=1.0, syntax_share=0.0),
        LossRow(step=0, iteration=1, spatial=0.6, syntax=0.0, total=0.6, spatial_raw=0.6,
                syntax_raw=0.0),
        LossRow(step=1, iteration=0, spatial=0.5, syntax=0.02, total=0.52, spatial_raw=0.5,
                syntax_raw=0.2, spatial_share=0.9, syntax_share=0.1),
    ]  # fmt: skip
    fig = loss_figure(rows)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["total"].x) == [0.0, 0.5, 1.0] and list(by_name["total"].y) == [
        0.8,
        0.6,
        0.52,
    ]
    assert list(by_name["syntax raw"].y) == [0.0, 0.0, 0.2]
    assert list(by_name["syntax weighted"].y) == [0.0, 0.0, 0.02]
    # shares: one bar per step (its first iteration); the inert syntax term reads 0 at step 0
    assert list(by_name["syntax share"].x) == [0, 1] and list(by_name["syntax share"].y) == [
        0.0,
        0.1,
    ]
    assert by_name["spatial raw"].yaxis == "y" and by_name["spatial share"].yaxis == "y3"
    assert not [t for t in loss_figure([]).data]


def test_trajectory_figure_is_fast_for_the_largest_plan():
    import time

    t = np.linspace(0.0, 0.8, 512)
    paths = [[[x, i / 60, x + 0.1, i / 60 + 0.1] for x in t] for i in range(48)]
    objects = [{"id": f"o-{i}", "noun": "o", "subject": 0, "boxes": b} for i, b in enumerate(paths)]
    big = validate_plan({"frames": 512, "objects": objects})
    keys = {o.id: sorted(o.keyframes_or_fit()) for o in big.objects}
    start = time.perf_counter()
    fig = trajectory_figure(big, current_frame=10, keyframes=keys)
    fig.to_json()
    assert time.perf_counter() - start < 0.6  # one object at a time took 0.8 s
    assert len([d for d in fig.data if d.name]) == 48 and len(fig.layout.shapes) == 48
