"""Paired statistics: the shapes benchmark's table unchanged, markdown, per-task tables, plot."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from starvid.errors import StarVidError
from starvid.evaluation import stats

FROZEN = Path(__file__).parent / "data" / "shapes_eval_table.json"


def _shapes_eval():
    """benchmarks/shapes_eval.py as a module (as tests/test_shapes.py loads it)."""
    import importlib
    import sys

    bench_dir = str(Path(__file__).resolve().parents[1] / "benchmarks")
    if bench_dir not in sys.path:
        sys.path.insert(0, bench_dir)
    return importlib.import_module("shapes_eval")


def paired_rows(n: int = 23) -> list[dict]:
    """Rows in shapes_eval's --rows form, from fixed arithmetic (no random generator)."""
    rows = []
    for i in range(n):
        base = {
            "numeracy": float(i % 5 == 0),
            "attribute": float(i % 3 != 0),
            "motion": (i % 3) / 2,
            "action_binding": float(i % 7 == 0),
        }
        star = {
            "numeracy": float(i % 4 != 1),
            "attribute": float(i % 5 != 2),
            "motion": ((i + 1) % 3) / 2,
            "action_binding": float(i % 2 == 0),
        }
        for arm in (base, star):
            arm["all"] = float(arm["numeracy"] and arm["attribute"] and arm["action_binding"])
        groups = [
            {"count": 1 + i % 3, "baseline": i % 2 == 0, "starvid": i % 3 != 1},
            {"count": 1 + (i + 1) % 3, "baseline": i % 4 == 0, "starvid": True},
        ]
        extra = {"baseline": i % 6 == 0, "starvid": i % 11 == 0}
        rows.append(
            {
                "caption": f"c{i}",
                "seed": i % 3,
                "baseline": base,
                "starvid": star,
                "groups": groups,
                "extra": extra,
            }
        )
    return rows


def swapped(rows: list[dict]) -> list[dict]:
    """The same videos with the arms exchanged (StarVid's scores in the baseline's place)."""
    out = []
    for r in rows:
        groups = [g | {"baseline": g["starvid"], "starvid": g["baseline"]} for g in r["groups"]]
        extra = {"baseline": r["extra"]["starvid"], "starvid": r["extra"]["baseline"]}
        out.append(
            r
            | {"baseline": r["starvid"], "starvid": r["baseline"], "groups": groups, "extra": extra}
        )
    return out


def test_shapes_eval_table_is_unchanged_by_the_move():
    """tests/data/shapes_eval_table.json was written by shapes_eval.py before its statistics
    moved to starvid.evaluation.stats: the same rows give the same table, value for value, and
    the same printed text."""
    frozen = json.loads(FROZEN.read_text())
    bench = _shapes_eval()
    rows = paired_rows()
    table = bench.rate_table(rows)
    compare = bench.compare_rows(rows, swapped(rows))
    one = bench.rate_table(rows[:1])
    # json.dumps compares NaN bounds too (one row has no interval)
    assert json.dumps(table) == json.dumps(frozen["table"])
    assert json.dumps(compare) == json.dumps(frozen["compare"])
    assert json.dumps(one) == json.dumps(frozen["one_row"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        bench.print_table("shapes world: baseline vs StarVid", table)
        bench.print_table("StarVid: B - A", compare, ("A", "B"))
        bench.print_table("one row", one)
    assert out.getvalue() == frozen["printed"]
    # the general table is the benchmark's without its shapes-world diagnosis
    general = stats.rate_table(rows, bench.CATEGORIES)
    assert general == {k: v for k, v in table.items() if k != "diagnosis"}


def test_paired_difference_by_value():
    d = stats.paired_difference([0, 0, 1, 1], [1, 1, 1, 0])
    half = 1.96 * np.std([1, 1, 0, -1], ddof=1) / 2
    assert d["mean"] == 0.25 and d["ci95"] == pytest.approx([0.25 - half, 0.25 + half])
    assert d["ci95"] == pytest.approx([-0.688, 1.188], abs=1e-3)
    same = stats.paired_difference([0.5, 1.0], [0.5, 1.0])
    assert same == {"mean": 0.0, "ci95": [0.0, 0.0]}
    assert np.isnan(stats.paired_difference([0.0], [1.0])["ci95"]).all()


def _task_rows():
    rows = []
    for i in range(10):
        rows.append(
            {"id": f"n{i}", "task": "numeracy", "baseline": {"numeracy": float(i < 3)},
             "starvid": {"numeracy": float(i < 7)}}
        )  # fmt: skip
        rows.append(
            {"id": f"s{i}", "task": "spatial_relationships",
             "baseline": {"spatial_relationships": 0.4}, "starvid": {"spatial_relationships": 0.7}}
        )  # fmt: skip
    return rows


def test_tables_per_task_and_markdown():
    tables = stats.rate_tables(_task_rows())
    assert list(tables) == ["numeracy", "spatial_relationships"]
    num = tables["numeracy"]
    assert num["baseline"] == {"numeracy": 0.3} and num["starvid"] == {"numeracy": 0.7}
    assert num["n_videos"] == 10 and num["difference"]["numeracy"]["mean"] == pytest.approx(0.4)
    sp = tables["spatial_relationships"]["difference"]["spatial_relationships"]
    assert sp["mean"] == pytest.approx(0.3) and sp["ci95"] == pytest.approx([0.3, 0.3])
    # 1.96 * sd([1] * 4 + [0] * 6) / sqrt(10) = 0.320
    assert stats.markdown_table(tables).splitlines() == [
        "| task | category | videos | baseline | StarVid | difference [95 % CI] |",
        "| --- | --- | ---: | ---: | ---: | --- |",
        "| numeracy | numeracy | 10 | 30.0 % | 70.0 % | +40.0 [+8.0, +72.0] |",
        "| spatial_relationships | spatial_relationships | 10 | 40.0 % | 70.0 % | "
        "+30.0 [+30.0, +30.0] |",
    ]


def test_rows_missing_a_category_are_named():
    rows = [r for r in _task_rows() if r["task"] == "numeracy"][:3]
    del rows[2]["starvid"]["numeracy"]
    with pytest.raises(StarVidError, match="row 2 has no 'numeracy' score in arm 'starvid'"):
        stats.rate_table(rows)
    with pytest.raises(StarVidError, match="no scored videos"):
        stats.rate_table([])


def test_plot_draws_each_rate_to_scale(tmp_path):
    tables = stats.rate_tables(_task_rows())
    path = tmp_path / "plots" / "rates.png"
    bars = stats.plot_rates(tables, path, title="test")
    image = np.asarray(Image.open(path).convert("RGB"))
    assert len(bars) == 4 and {b["arm"] for b in bars} == {"baseline", "starvid"}
    plot = stats._LAYOUT["plot"]
    for bar, color in zip(bars, stats.BAR_COLORS * 2, strict=True):
        x0, y0, x1, y1 = bar["box"]
        assert y1 - y0 == round(bar["value"] * plot)  # height to scale
        middle = image[(y0 + y1) // 2, (x0 + x1) // 2]
        assert tuple(middle) == color, bar
        assert tuple(image[y0 - 2, (x0 + x1) // 2]) != color  # nothing above the bar
    numeracy_base = next(b for b in bars if b["name"] == "numeracy" and b["arm"] == "baseline")
    assert numeracy_base["value"] == pytest.approx(0.3)
    with pytest.raises(StarVidError, match="nothing to plot"):
        stats.plot_rates({}, tmp_path / "empty.png")
