"""Plotly figures for the Studio and for reports: trajectories, heat maps, in-box shares, losses.

Every function takes plain data (a Plan, numpy arrays, the typed run report) and returns a
``plotly.graph_objects.Figure``; nothing here knows about Gradio, so the figures can be saved
with ``fig.write_html`` from scripts as well.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from starvid.guidance import TERMS
from starvid.plan import Plan
from starvid.report import LossRow, RunReport

# Qualitative colours that stay apart on white and on dark video frames (Plotly's D3 set).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)
HEATMAP_SCALE = "Inferno"


def object_colors(ids: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """One colour per object instance, in plan order (cycles after ten objects)."""
    return {oid: PALETTE[i % len(PALETTE)] for i, oid in enumerate(ids)}


def rgb(color: tuple[int, int, int], alpha: float | None = None) -> str:
    """CSS colour text for an RGB tuple, with optional alpha."""
    r, g, b = color
    return f"rgb({r},{g},{b})" if alpha is None else f"rgba({r},{g},{b},{alpha})"


def _frame_axes(fig: go.Figure, aspect: float, row: int | None = None, col: int | None = None):
    """Axes in frame fractions, origin top-left, square pixels."""
    kw = {} if row is None else {"row": row, "col": col}
    fig.update_xaxes(range=[0, 1], constrain="domain", showgrid=False, zeroline=False, **kw)
    fig.update_yaxes(
        range=[1, 0],
        scaleanchor="x" if row is None else None,
        scaleratio=aspect,
        constrain="domain",
        showgrid=False,
        zeroline=False,
        **kw,
    )


def trajectory_figure(
    plan: Plan,
    current_frame: int | None = None,
    keyframes: Mapping[str, Sequence[int]] | None = None,
    aspect: float = 1.0,
    colors: Mapping[str, tuple[int, int, int]] | None = None,
) -> go.Figure:
    """Every object's box centre over time, in frame coordinates (y down).

    ``aspect`` is height / width of the video, so a path looks as it will on screen. Keyframes
    (frames the user placed by hand) are drawn as diamonds; the box at ``current_frame`` as a
    dashed rectangle. ``colors``: object id -> RGB (default: the palette in plan order).
    """
    colors = colors or object_colors([o.id for o in plan.objects])
    frames = np.arange(plan.frames)
    # Traces, shapes and arrows are gathered first and handed to plotly once: adding them one
    # by one validates the figure each time (much slower at the plan limits; docs/results.md).
    traces, shapes, arrows = [], [], []
    for obj in plan.objects:
        color = rgb(colors[obj.id])
        path = obj.center_path()
        traces.append(
            go.Scatter(
                x=path[:, 0],
                y=path[:, 1],
                mode="lines+markers",
                name=obj.id,
                line={"color": color, "width": 2},
                marker={"size": 5, "color": color},
                customdata=frames,
                hovertemplate=f"{obj.id}<br>frame %{{customdata}}<br>x=%{{x:.2f}} y=%{{y:.2f}}"
                "<extra></extra>",
            )
        )
        # The end of the path gets an arrow so the direction reads at a glance.
        if plan.frames > 1 and np.linalg.norm(path[-1] - path[0]) > 1e-3:
            arrows.append(
                {
                    "x": path[-1, 0],
                    "y": path[-1, 1],
                    "ax": path[-2, 0],
                    "ay": path[-2, 1],
                    "xref": "x",
                    "yref": "y",
                    "axref": "x",
                    "ayref": "y",
                    "showarrow": True,
                    "arrowhead": 3,
                    "arrowsize": 1.5,
                    "arrowcolor": color,
                    "text": "",
                }
            )
        kf = sorted((keyframes or {}).get(obj.id, []))
        if kf:
            traces.append(
                go.Scatter(
                    x=path[kf, 0],
                    y=path[kf, 1],
                    mode="markers",
                    showlegend=False,
                    marker={
                        "symbol": "diamond",
                        "size": 11,
                        "color": color,
                        "line": {"color": "black", "width": 1},
                    },
                    hovertemplate=f"{obj.id} keyframe<extra></extra>",
                )
            )
        if current_frame is not None and 0 <= current_frame < plan.frames:
            x0, y0, x1, y1 = obj.boxes[current_frame]
            shapes.append(
                {
                    "type": "rect",
                    "x0": x0,
                    "y0": y0,
                    "x1": x1,
                    "y1": y1,
                    "line": {"color": color, "dash": "dash", "width": 1},
                    "fillcolor": rgb(colors[obj.id], 0.08),
                }
            )
    fig = go.Figure(data=traces, layout={"shapes": shapes, "annotations": arrows})
    _frame_axes(fig, aspect)
    title = "Box centres over time"
    if current_frame is not None:
        title += f" (dashed: frame {current_frame})"
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=400,
        margin={"l": 30, "r": 10, "t": 40, "b": 30},
        legend={"orientation": "h", "y": -0.08},
        plot_bgcolor="#f4f4f4",
    )
    return fig


def heatmap_figure(
    maps: Mapping[str, np.ndarray],
    frames: Mapping[str, np.ndarray] | None = None,
    title: str = "",
    boxes: Sequence[tuple[str, tuple[float, float, float, float]]] = (),
    opacity: float = 0.6,
) -> go.Figure:
    """Cross-attention maps side by side (one panel per run), over the frame, with a colour bar.

    ``maps``: run name ("guided", "baseline") -> map ``(h, w)`` for one word at one frame and
    step. ``frames``: run name -> the decoded frame ``(H, W, 3)`` uint8, drawn underneath when
    given. ``boxes``: ``(label, box)`` outlines drawn on every panel (the planned boxes). The
    colour scale is shared so the panels compare directly.
    """
    names = list(maps)
    if not names:
        raise ValueError("heatmap_figure needs at least one map")
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.04)
    arrays = {n: np.asarray(maps[n], dtype=np.float32) for n in names}
    zmax = max(float(np.nanmax(a)) for a in arrays.values()) if arrays else 1.0
    zmax = zmax if zmax > 0 else 1.0
    aspect = 1.0
    for col, name in enumerate(names, start=1):
        a = arrays[name]
        img = None if frames is None else frames.get(name)
        if img is not None:
            ih, iw = img.shape[:2]
            aspect = ih / iw
            fig.add_trace(
                go.Image(
                    z=img, x0=0.5 / iw, dx=1.0 / iw, y0=0.5 / ih, dy=1.0 / ih, hoverinfo="skip"
                ),
                row=1,
                col=col,
            )
        else:
            aspect = a.shape[0] / a.shape[1]
        mh, mw = a.shape
        fig.add_trace(
            go.Heatmap(
                z=a,
                x=(np.arange(mw) + 0.5) / mw,
                y=(np.arange(mh) + 0.5) / mh,
                zmin=0.0,
                zmax=zmax,
                colorscale=HEATMAP_SCALE,
                opacity=opacity,
                showscale=col == len(names),
                colorbar={"title": {"text": "attention"}, "thickness": 12},
                hovertemplate="x=%{x:.2f} y=%{y:.2f}<br>%{z:.4f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        for label, (x0, y0, x1, y1) in boxes:
            fig.add_shape(
                type="rect",
                x0=x0,
                y0=y0,
                x1=x1,
                y1=y1,
                row=1,
                col=col,
                line={"color": "white", "width": 1.5, "dash": "dot"},
            )
            fig.add_annotation(
                x=x0,
                y=y0,
                text=label,
                showarrow=False,
                xanchor="left",
                yanchor="bottom",
                font={"color": "white", "size": 10},
                row=1,
                col=col,
            )
        _frame_axes(fig, aspect, row=1, col=col)
        fig.update_yaxes(scaleanchor=f"x{col if col > 1 else ''}", row=1, col=col)
        fig.update_xaxes(showticklabels=False, row=1, col=col)
        fig.update_yaxes(showticklabels=False, row=1, col=col)
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=340,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
    )
    return fig


def inbox_share_figure(
    report: RunReport,
    key: str = "inbox_share",
    colors: Mapping[str, tuple[int, int, int]] | None = None,
) -> go.Figure:
    """Per object and frame, the share of its noun's attention inside its box: guided vs baseline.

    Reads the report's ``objects[*].<key>`` (``inbox_share`` at the end of the guidance window,
    or ``inbox_share_final`` at the last steps). Solid lines: guided; dashed: baseline. The
    legend's means are the report's own (``RunReport.share_means``). ``colors``: object id ->
    RGB (default: the palette in plan order).
    """
    fig = go.Figure()
    colors = colors or object_colors([o.id for o in report.objects])
    means = report.share_means(key)
    for obj in report.objects:
        shares = getattr(obj, key)
        for run, dash in (("guided", "solid"), ("baseline", "dash")):
            values = shares.get(run)
            if not values:
                continue
            fig.add_trace(
                go.Scatter(
                    x=list(range(len(values))),
                    y=values,
                    mode="lines+markers",
                    name=f"{obj.id} {run} (mean {means[obj.id][run]:.2f})",
                    line={"color": rgb(colors.get(obj.id, PALETTE[-1])), "dash": dash},
                    marker={"size": 4},
                )
            )
    where = "guidance window" if key == "inbox_share" else "final steps"
    fig.update_layout(
        title={"text": f"In-box attention share per object ({where})", "font": {"size": 14}},
        xaxis_title="frame",
        yaxis_title="share inside box",
        yaxis_range=[0, 1],
        height=300,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        legend={"font": {"size": 10}},
    )
    if not fig.data:
        _empty_note(fig, "no in-box shares in this report")
    return fig


def _empty_note(fig: go.Figure, text: str) -> None:
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")


TERM_COLORS = {"spatial": "rgb(55,126,184)", "syntax": "rgb(228,26,28)", "total": "rgb(60,60,60)"}


def _line(x, y, name: str, color: str, dash: str = "solid") -> go.Scatter:
    return go.Scatter(
        x=x,
        y=y,
        name=name,
        mode="lines+markers",
        marker={"size": 4},
        line={"color": color, "dash": dash},
    )


def loss_figure(losses: Sequence[LossRow]) -> go.Figure:
    """The guidance terms per gradient iteration (x: step + iteration / iterations), in three
    panels: each term's raw (unweighted) value, its weighted value with the total, and its
    share of the latent update at the first iteration of each step. A term that cannot act
    (zero weight, or a saturated loss) shows a share of 0 at once."""
    panels = ("raw loss (unweighted)", "weighted loss", "share of the update")
    fig = make_subplots(
        rows=3, cols=1, shared_xaxes=True, subplot_titles=panels, vertical_spacing=0.09
    )
    if not losses:
        _empty_note(fig, "no guidance losses yet")
    else:
        iters = max(r.iteration for r in losses) + 1
        x = [r.step + r.iteration / iters for r in losses]
        for term in TERMS:
            color = TERM_COLORS[term]
            raw = [getattr(r, f"{term}_raw") for r in losses]
            weighted = [getattr(r, term) for r in losses]
            fig.add_trace(_line(x, raw, f"{term} raw", color), row=1, col=1)
            fig.add_trace(_line(x, weighted, f"{term} weighted", color, "dot"), row=2, col=1)
            firsts = [r for r in losses if getattr(r, f"{term}_share") is not None]
            shares = [getattr(r, f"{term}_share") for r in firsts]
            bars = go.Bar(
                x=[r.step for r in firsts], y=shares, name=f"{term} share", marker={"color": color}
            )
            fig.add_trace(bars, row=3, col=1)
        total = [r.total for r in losses]
        fig.add_trace(_line(x, total, "total", TERM_COLORS["total"]), row=2, col=1)
        fig.update_yaxes(range=[0, 1], row=3, col=1)
    fig.update_layout(
        title={"text": "Guidance losses", "font": {"size": 14}},
        barmode="stack",
        height=460,
        margin={"l": 50, "r": 10, "t": 50, "b": 40},
        legend={"font": {"size": 10}},
    )
    fig.update_xaxes(title_text="denoising step", row=3, col=1)
    return fig
