"""Paired statistics of two arms (baseline and StarVid) scored on the same videos.

A row is one video scored in both arms: ``{"baseline": {category: value}, "starvid": {...}}``
(values in [0, 1]: a pass as 0/1 or a benchmark score), plus anything else (caption, seed, task).
``rate_table`` gives each arm's mean per category and the paired difference (second arm minus
first) with a 95 % interval from the normal approximation, mean ± 1.96 sd / sqrt(n) of the
per-video differences: the videos share their seed and prompt, so the pairing removes most of
the prompt-to-prompt spread. ``markdown_table``, ``text_table`` and ``plot_rates`` show them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from starvid.errors import StarVidError

ARMS = ("baseline", "starvid")
ARM_LABELS = ("baseline", "StarVid")


def paired_difference(first: Sequence[float], second: Sequence[float]) -> dict:
    """Mean of ``second - first`` over pairs and its 95 % interval (NaN bounds under 2 pairs)."""
    d = np.array([b - a for a, b in zip(first, second, strict=True)], dtype=float)
    half = 1.96 * d.std(ddof=1) / math.sqrt(len(d)) if len(d) > 1 else float("nan")
    return {"mean": float(d.mean()), "ci95": [float(d.mean() - half), float(d.mean() + half)]}


def categories_of(rows: list[dict], arm: str = ARMS[0]) -> list[str]:
    """The categories of the rows' `arm`, in first-seen order."""
    return list(dict.fromkeys(c for r in rows for c in r[arm]))


def _column(rows: list[dict], arm: str, category: str) -> list[float]:
    try:
        return [r[arm][category] for r in rows]
    except KeyError as exc:
        missing = next(i for i, r in enumerate(rows) if category not in r.get(arm, {}))
        raise StarVidError(f"row {missing} has no {category!r} score in arm {arm!r}") from exc


def rate_table(
    rows: list[dict], categories: Sequence[str] | None = None, arms: tuple[str, str] = ARMS
) -> dict:
    """Per-arm rates and the paired ``arms[1] - arms[0]`` difference with a 95 % interval.

    Returns ``{arms[0]: {category: rate}, arms[1]: {...}, "difference": {category: {"mean",
    "ci95"}}, "n_videos": n}``. Every row must score every category (default: those of the
    rows) in both arms.
    """
    if not rows:
        raise StarVidError("no scored videos to tabulate")
    categories = list(categories or categories_of(rows, arms[0]))
    columns = {(arm, c): _column(rows, arm, c) for arm in arms for c in categories}
    out: dict = {arm: {c: float(np.mean(columns[arm, c])) for c in categories} for arm in arms}
    out["difference"] = {
        c: paired_difference(columns[arms[0], c], columns[arms[1], c]) for c in categories
    }
    out["n_videos"] = len(rows)
    return out


def rate_tables(rows: list[dict], key: str = "task", arms: tuple[str, str] = ARMS) -> dict:
    """One ``rate_table`` per value of ``row[key]`` (e.g. per task of a mixed suite)."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(str(r[key]), []).append(r)
    return {name: rate_table(group, arms=arms) for name, group in groups.items()}


def _arm_keys(table: dict) -> tuple[str, str]:
    first, second = (k for k in table if k not in ("difference", "n_videos", "diagnosis"))
    return first, second


def text_table(table: dict, labels: tuple[str, str] = ARM_LABELS) -> str:
    """Fixed-width lines: category, both arms' rates in percent, difference and 95 % interval."""
    first, second = _arm_keys(table)
    lines = [f"{'category':<16}{labels[0]:>10}{labels[1]:>10}{'diff':>9}   95% CI"]
    for c, d in table["difference"].items():
        lo, hi = d["ci95"]
        lines.append(
            f"{c:<16}{100 * table[first][c]:>9.1f}%{100 * table[second][c]:>9.1f}%"
            f"{100 * d['mean']:>+8.1f}   [{100 * lo:+.1f}, {100 * hi:+.1f}]"
        )
    return "\n".join(lines)


def markdown_table(tables: Mapping[str, dict], labels: tuple[str, str] = ARM_LABELS) -> str:
    """A markdown table of named rate tables (e.g. per task): one line per category."""
    lines = [
        f"| task | category | videos | {labels[0]} | {labels[1]} | difference [95 % CI] |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for name, table in tables.items():
        first, second = _arm_keys(table)
        for c, d in table["difference"].items():
            lo, hi = d["ci95"]
            lines.append(
                f"| {name} | {c} | {table['n_videos']} | {100 * table[first][c]:.1f} % | "
                f"{100 * table[second][c]:.1f} % | "
                f"{100 * d['mean']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] |"
            )
    return "\n".join(lines)


# -- bar chart (PIL: matplotlib is not a dependency, and plotly needs kaleido for PNG) ----------

BAR_COLORS = ((150, 150, 150), (60, 110, 220))  # first arm grey, second arm blue
BACKGROUND = (255, 255, 255)
_LAYOUT = dict(bar=28, gap=6, pad=30, left=50, right=20, top=96, plot=260, bottom=56)


def plot_rates(
    tables: Mapping[str, dict],
    path: str | Path,
    labels: tuple[str, str] = ARM_LABELS,
    title: str = "",
) -> list[dict]:
    """Draw both arms' rates per category as grouped bars, the difference and its 95 % interval
    above each group, into a PNG at `path`; returns the bars drawn (name, category, arm, value,
    pixel box)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=12)
    groups = []
    for name, table in tables.items():
        for category, diff in table["difference"].items():
            label = category if not name or name == category else f"{name}:\n{category}"
            lo, hi = diff["ci95"]
            above = f"{100 * diff['mean']:+.1f}\n[{100 * lo:+.1f}, {100 * hi:+.1f}]"
            text_w = max(font.getlength(line) for line in (*label.split("\n"), *above.split("\n")))
            groups.append((name, category, table, label, above, int(text_w)))
    if not groups:
        raise StarVidError("nothing to plot: the tables have no categories")
    L = _LAYOUT
    widths = [max(2 * L["bar"] + L["gap"], w) + L["pad"] for *_, w in groups]
    width = max(L["left"] + sum(widths) + L["right"], 360)
    height = L["top"] + L["plot"] + L["bottom"]
    base = L["top"] + L["plot"]
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):  # gridlines and percent ticks
        y = base - round(frac * L["plot"])
        draw.line([(L["left"] - 4, y), (width - L["right"], y)], fill=(225, 225, 225))
        draw.text((4, y - 7), f"{100 * frac:.0f}%", fill=(90, 90, 90), font=font)
    bars = []
    x = L["left"] + L["pad"] // 2
    for (name, category, table, label, above, _), group_w in zip(groups, widths, strict=True):
        for k, arm in enumerate(_arm_keys(table)):
            value = float(table[arm][category])
            x0 = x + k * (L["bar"] + L["gap"])
            box = (x0, base - round(value * L["plot"]), x0 + L["bar"] - 1, base)
            if value > 0:
                draw.rectangle(box, fill=BAR_COLORS[k])
            bars.append(dict(name=name, category=category, arm=arm, value=value, box=box))
        draw.multiline_text((x, L["top"] - 36), above, fill=(0, 0, 0), font=font)
        draw.multiline_text((x, base + 8), label, fill=(0, 0, 0), font=font)
        x += group_w
    draw.line([(L["left"] - 4, base), (width - L["right"], base)], fill=(0, 0, 0))
    if title:
        draw.text((L["left"], 6), title, fill=(0, 0, 0), font=font)
    for k, text in enumerate(labels):  # legend, and what the numbers above the bars are
        lx = L["left"] + 110 * k
        draw.rectangle((lx, 28, lx + 12, 40), fill=BAR_COLORS[k])
        draw.text((lx + 18, 27), text, fill=(0, 0, 0), font=font)
    note = f"above: {labels[1]} - {labels[0]}, points [95 % CI]"
    draw.text((L["left"], 44), note, fill=(90, 90, 90), font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return bars
