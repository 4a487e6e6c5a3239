"""The attention debugger's views of an ``AttentionRecording``, the same in the Studio and from
Python: each returns an ``AttentionView`` (an image with its labels drawn, a plotly figure of
it, PNG and, for the animation, GIF export).

- ``overlay_view``: a word's map over the decoded frame (opacity) and alone, with its boxes;
- ``steps_view``: a word over frames x steps, the guidance window marked;
- ``words_view``: several words (all subjects' words) side by side at one frame;
- ``layers_view`` / ``heads_view``: a word at each layer alone, or each head of one layer;
- ``compare_view``: guided, baseline and guided minus baseline on one scale;
- ``prompt_view``: the prompt, each word shaded by its in-box share or its map's entropy;
- ``settle_view``: how much each word's map still changes from step to step;
- ``animation_view``: a word's map over the frames, as an animation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from starvid import attention_render as R
from starvid.recording import AttentionRecording

CELL = 96


@dataclass
class AttentionView:
    """One drawn view: ``image`` (H, W, 3) uint8 with title and labels; ``frames`` for an
    animation; ``labels`` the words, steps or layers it shows (for tests and captions)."""

    kind: str
    title: str
    image: np.ndarray
    labels: list[str] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)

    def figure(self):
        """A plotly figure of the image (an animation gets a frame slider and play button)."""
        import plotly.graph_objects as go

        fig = go.Figure(go.Image(z=self.image))
        if self.frames:
            fig.frames = [
                go.Frame(data=[go.Image(z=f)], name=str(i)) for i, f in enumerate(self.frames)
            ]
            fig.update_layout(
                updatemenus=[{"type": "buttons", "buttons": [
                    {"label": "Play", "method": "animate",
                     "args": [None, {"frame": {"duration": 250}, "fromcurrent": True}]}]}],
                sliders=[{"steps": [
                    {"label": f"frame {i}", "method": "animate",
                     "args": [[str(i)], {"mode": "immediate"}]}
                    for i in range(len(self.frames))]}],
            )  # fmt: skip
        h, w = self.image.shape[:2]
        fig.update_layout(
            title={"text": self.title, "font": {"size": 13}},
            margin={"l": 4, "r": 4, "t": 36, "b": 4},
            height=int(min(h, 900) + 60 + (60 if self.frames else 0)),
            meta={"kind": self.kind, "labels": self.labels},
        )
        fig.update_xaxes(visible=False, range=[0, w])
        fig.update_yaxes(visible=False, range=[h, 0])
        return fig

    def save_png(self, path: str | Path) -> Path:
        """Write the view as a PNG (Pillow; no browser)."""
        from PIL import Image

        path = Path(path)
        Image.fromarray(self.image).save(path)
        return path

    def save_gif(self, path: str | Path, fps: int = 4) -> Path:
        """Write an animation's frames as a GIF (``starvid.export``)."""
        from starvid.export import write_gif

        frames = np.stack(self.frames if self.frames else [self.image])
        return write_gif(frames, path, fps=fps, min_size=1)


def _frame_of(video: np.ndarray | None, f: int, size: int) -> np.ndarray:
    if video is None or not len(video):
        return np.zeros((size, size, 3), np.uint8)
    return R.resize(np.asarray(video[min(f, len(video) - 1)]), (size, size))


def _where(layer: str | None, step: int | None) -> str:
    where = "mean of the guidance layers" if layer is None else f"layer {layer}"
    if layer and layer.startswith("level:"):
        where = f"resolution {layer} (its layers' mean)"
    return where + (", mean over steps" if step is None else f", step {step}")


def overlay_view(
    rec: AttentionRecording,
    word: str,
    frame: int,
    video: np.ndarray | None = None,
    opacity: float = 0.6,
    layer: str | None = None,
    step: int | None = None,
    boxes: Sequence[Sequence[float]] = (),
) -> AttentionView:
    """A word's map at one frame over the decoded frame (``opacity``), and alone."""
    m = rec.word_map(word, layer, step)
    f = int(np.clip(frame, 0, len(m) - 1))
    size = 256
    coloured = R.resize(R.colorize(m[f], 0.0, float(m[f].max())), (size, size))
    over = R.over_frame(_frame_of(video, f, size), coloured, opacity)
    panels = [R.Panel(R.draw_boxes(over, boxes), f"over frame, opacity {opacity:.2f}")]
    panels.append(R.Panel(R.draw_boxes(coloured, boxes), "map alone"))
    title = f"'{rec.label(word)}' at frame {f} ({_where(layer, step)})"
    image = R.grid([panels], title, colorbar=(0.0, float(m[f].max()), "viridis"), cell=size)
    return AttentionView("overlay", title, image, [word])


def steps_view(
    rec: AttentionRecording, word: str, max_steps: int = 25, level: str | None = None
) -> AttentionView:
    """A word over frames (columns) and steps (rows), one colour scale; the guidance window's
    rows are marked in orange. ``level="level:N"``: one resolution's layers."""
    maps = rec.step_maps(word, level)  # (S, F, h, w)
    rows = list(range(0, len(maps), max(1, int(np.ceil(len(maps) / max_steps)))))
    vmax = float(maps.max())
    grid_rows = [
        [R.Panel(R.colorize(maps[s, f], 0.0, vmax)) for f in range(maps.shape[1])] for s in rows
    ]
    labels = [f"step {s}" for s in rows]
    marked = [i for i, s in enumerate(rows) if s < rec.window]
    name = rec.label(word) + (f" ({level})" if level else "")
    title = f"'{name}' over frames x steps (orange: guidance window, steps 0-{rec.window - 1})"
    if not rec.window:
        title = f"'{name}' over frames x steps (no guidance window: baseline)"
    cols = [f"f{f}" for f in range(maps.shape[1])]
    image = R.grid(grid_rows, title, labels, cols, marked, (0.0, vmax, "viridis"), cell=56)
    return AttentionView("steps", title, image, labels)


def words_view(
    rec: AttentionRecording, words: Sequence[str], frame: int, video: np.ndarray | None = None
) -> AttentionView:
    """Several words at one frame side by side on one colour scale (the frame first)."""
    maps = {w: rec.word_map(w)[frame] for w in words}
    vmax = max(float(m.max()) for m in maps.values())
    panels = [R.Panel(_frame_of(video, frame, CELL), "frame")] if video is not None else []
    panels += [R.Panel(R.colorize(m, 0.0, vmax), w) for w, m in maps.items()]
    title = f"{len(maps)} words at frame {frame} (mean over steps, one scale)"
    return AttentionView(
        "words", title, R.grid([panels], title, colorbar=(0.0, vmax, "viridis")), list(maps)
    )


def layers_view(rec: AttentionRecording, word: str, frame: int) -> AttentionView:
    """A word at one frame in each cross-attention layer alone (mean over steps), each on its
    own scale (layers differ in sharpness), the guidance's layers starred."""
    panels, labels = [], []
    for i, name in enumerate(rec.layer_names):
        m = rec.word_map(word, name)[frame]
        star = "*" if name in rec.guidance_layers else ""
        labels.append(name)
        panels.append(
            R.Panel(R.colorize(m, 0.0, float(m.max())), f"{star}L{i} {m.shape[0]}x{m.shape[1]}")
        )
    title = f"'{rec.label(word)}' at frame {frame}, each layer alone (* = read by the guidance)"
    return AttentionView("layers", title, R.grid([panels], title), labels)


def heads_view(rec: AttentionRecording, word: str, layer: str, frame: int) -> AttentionView:
    """A word at one frame and layer, each attention head alone (mean over steps)."""
    maps = rec.head_maps(word, layer)[:, frame]
    vmax = float(maps.max())
    panels = [R.Panel(R.colorize(m, 0.0, vmax), f"head {h}") for h, m in enumerate(maps)]
    title = f"'{rec.label(word)}' at frame {frame}, layer {layer}, per head"
    image = R.grid(
        [panels[i : i + 8] for i in range(0, len(panels), 8)], title, colorbar=(0, vmax, "viridis")
    )
    return AttentionView("heads", title, image, [p.caption for p in panels])


def compare_view(
    guided: AttentionRecording, baseline: AttentionRecording, word: str, step: int | None = None
) -> AttentionView:
    """Guided, baseline and guided minus baseline over the frames: the two runs on one scale,
    their difference on the same scale's span around zero."""
    g, b = guided.word_map(word, step=step), baseline.word_map(word, step=step)
    vmax = float(max(g.max(), b.max()))
    rows = [
        [R.Panel(R.colorize(m, 0.0, vmax)) for m in g],
        [R.Panel(R.colorize(m, 0.0, vmax)) for m in b],
    ]
    rows.append([R.Panel(R.colorize(d, -vmax, vmax, "diverging")) for d in g - b])
    step_text = "mean over steps" if step is None else f"step {step}"
    title = (
        f"'{guided.label(word)}': guided, baseline, guided - baseline "
        f"({step_text}; red: more when guided)"
    )
    labels = ["guided", "baseline", "difference"]
    cols = [f"f{f}" for f in range(len(g))]
    image = R.grid(rows, title, labels, cols, colorbar=(-vmax, vmax, "diverging"), cell=64)
    return AttentionView("compare", title, image, labels)


def map_entropy(m: np.ndarray) -> float:
    """Entropy of a map as a distribution over pixels, over its maximum (0 focused, 1 flat),
    averaged over frames."""
    flat = m.reshape(len(m), -1).astype(np.float64)
    p = flat / np.clip(flat.sum(1, keepdims=True), 1e-12, None)
    h = -(p * np.log(np.clip(p, 1e-12, None))).sum(1)
    return float(np.mean(h / np.log(flat.shape[1])))


def inbox_fraction(m: np.ndarray, boxes_per_frame: Sequence[Sequence[Sequence[float]]]) -> float:
    """Share of a word's map ``(F, h, w)`` inside its boxes (union per frame), mean over frames."""
    h, w = m.shape[1:]
    ys, xs = (np.arange(h)[:, None] + 0.5) / h, (np.arange(w)[None] + 0.5) / w  # pixel centres
    shares = []
    for f, boxes in enumerate(boxes_per_frame[: len(m)]):
        mask = np.zeros((h, w), bool)
        for x0, y0, x1, y1 in boxes:
            mask |= (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
        total = float(m[f].sum())
        shares.append(float(m[f][mask].sum()) / total if total > 0 else 0.0)
    return float(np.mean(shares)) if shares else float("nan")


def prompt_view(
    rec: AttentionRecording, word_boxes: dict[str, list[list[list[float]]]], by: str = "inbox"
) -> AttentionView:
    """The prompt's words shaded by how much of each one's attention falls in its boxes
    (``by="inbox"``; words without boxes grey) or by its map's entropy (``by="entropy"``)."""
    words, values = list(rec.words), []
    for w in words:
        m = rec.word_map(w)
        if by == "entropy":
            values.append(map_entropy(m))
        else:
            values.append(inbox_fraction(m, word_boxes[w]) if w in word_boxes else None)
    what = (
        "share of attention in its boxes"
        if by == "inbox"
        else "entropy of its map (0 focused, 1 flat)"
    )
    title = f"the prompt, each word shaded by the {what}"
    image = R.chips(words, values, title)
    return AttentionView(
        "prompt", title, image, [f"{w}={v}" for w, v in zip(words, values, strict=True)]
    )


def settle_view(rec: AttentionRecording, words: Sequence[str]) -> AttentionView:
    """Per word, the change of its map from the step before (L1, over the map's mass): when in
    the denoising the maps settle; the guidance window shaded."""
    series = {}
    for w in words:
        m = rec.step_maps(w).reshape(rec.n_steps, -1)
        change = np.abs(np.diff(m, axis=0)).sum(1) / np.clip(np.abs(m[1:]).sum(1), 1e-12, None)
        series[w] = [0.0, *change.tolist()]
    title = "how much each word's map changes from the step before"
    image = R.line_chart(series, title, rec.window, "change")
    return AttentionView("settle", title, image, list(series))


def animation_view(
    rec: AttentionRecording,
    word: str,
    video: np.ndarray | None = None,
    opacity: float = 0.6,
    layer: str | None = None,
) -> AttentionView:
    """A word's map over the frames (over the decoded video with ``opacity``)."""
    m = rec.word_map(word, layer)
    vmax, size = float(m.max()), 192
    frames = []
    for f in range(len(m)):
        coloured = R.resize(R.colorize(m[f], 0.0, vmax), (size, size))
        rgb = (
            R.over_frame(_frame_of(video, f, size), coloured, opacity)
            if video is not None
            else coloured
        )
        frames.append(R.grid([[R.Panel(rgb, f"frame {f}")]], f"'{rec.label(word)}'", cell=size))
    title = f"'{rec.label(word)}' across the {len(m)} frames ({_where(layer, None)})"
    return AttentionView("animation", title, frames[0], [word], frames)
