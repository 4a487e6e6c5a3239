"""Drawing attention maps as labelled images with numpy and Pillow: colour maps, a map over a
frame, and grids of panels with row and column labels and a colour bar.

The debugger's views are drawn here once, as RGB arrays: the same pixels become the plotly
figure in the Studio and the PNG a researcher saves (plotly's own PNG export needs kaleido and
a browser; this needs nothing beyond Pillow).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# viridis at 6 anchors (sequential: attention probability) and a blue-white-red diverging map
# (guided minus baseline); interpolated linearly to 256 entries
_VIRIDIS = [(68, 1, 84), (65, 68, 135), (42, 120, 142), (34, 168, 132), (122, 209, 81),
            (253, 231, 37)]  # fmt: skip
_DIVERGING = [(33, 102, 172), (146, 197, 222), (247, 247, 247), (244, 165, 130), (178, 24, 43)]
WINDOW_COLOUR = (230, 85, 13)  # the guidance window on every step axis
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)


def _lut(anchors: Sequence[tuple[int, int, int]]) -> np.ndarray:
    xs = np.linspace(0, 1, len(anchors))
    grid = np.linspace(0, 1, 256)
    a = np.asarray(anchors, dtype=np.float32)
    return np.stack([np.interp(grid, xs, a[:, c]) for c in range(3)], 1).astype(np.uint8)


LUTS = {"viridis": _lut(_VIRIDIS), "diverging": _lut(_DIVERGING)}


def font(size: int = 12) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def colorize(m: np.ndarray, vmin: float, vmax: float, cmap: str = "viridis") -> np.ndarray:
    """A 2-D map -> ``(h, w, 3)`` uint8 through ``cmap`` on ``[vmin, vmax]``."""
    span = vmax - vmin if vmax > vmin else 1.0
    idx = np.clip((np.asarray(m, dtype=np.float32) - vmin) / span, 0, 1)
    return LUTS[cmap][(idx * 255).round().astype(np.int64)]


def resize(rgb: np.ndarray, size: tuple[int, int], smooth: bool = True) -> np.ndarray:
    """``(h, w, 3)`` uint8 -> ``size`` (width, height)."""
    mode = Image.BILINEAR if smooth else Image.NEAREST
    return np.asarray(Image.fromarray(rgb).resize(size, mode))


def over_frame(frame: np.ndarray, coloured: np.ndarray, opacity: float) -> np.ndarray:
    """A coloured map laid over a decoded frame: ``opacity`` 0 shows the frame, 1 the map."""
    a = float(np.clip(opacity, 0.0, 1.0))
    base = frame.astype(np.float32)
    return (base * (1 - a) + coloured.astype(np.float32) * a).round().astype(np.uint8)


def draw_boxes(rgb: np.ndarray, boxes: Sequence[Sequence[float]], colour=(255, 255, 255)):
    """Boxes ``[x0, y0, x1, y1]`` (fractions) drawn on a copy of ``rgb``."""
    img = Image.fromarray(rgb)
    d = ImageDraw.Draw(img)
    h, w = rgb.shape[:2]
    for x0, y0, x1, y1 in boxes:
        d.rectangle([x0 * w, y0 * h, x1 * w - 1, y1 * h - 1], outline=colour, width=2)
    return np.asarray(img)


@dataclass
class Panel:
    """One cell of a grid: an RGB image and an optional caption under it."""

    rgb: np.ndarray
    caption: str = ""


def grid(
    rows: Sequence[Sequence[Panel]],
    title: str,
    row_labels: Sequence[str] = (),
    col_labels: Sequence[str] = (),
    marked_rows: Sequence[int] = (),
    colorbar: tuple[float, float, str] | None = None,
    cell: int = 96,
) -> np.ndarray:
    """Panels laid out in rows under a title, with labels, a mark (bar in the window colour)
    beside ``marked_rows`` and a colour bar ``(vmin, vmax, cmap)`` at the right."""
    f, small = font(13), font(11)
    n_cols = max(len(r) for r in rows)
    left = 70 if row_labels else 8
    top, cap = 40 if col_labels else 26, 14 if any(p.caption for r in rows for p in r) else 0
    bar = 70 if colorbar else 0
    title_width = int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(title, font=f)) + 16
    width = max(left + n_cols * (cell + 4) + bar + 8, title_width)
    height = top + len(rows) * (cell + 4 + cap) + 8
    img = Image.new("RGB", (width, height), BACKGROUND)
    d = ImageDraw.Draw(img)
    d.text((8, 4), title, fill=INK, font=f)
    for j, label in enumerate(col_labels):
        d.text((left + j * (cell + 4) + 2, 24), label, fill=INK, font=small)
    for i, row in enumerate(rows):
        y = top + i * (cell + 4 + cap)
        if i < len(row_labels):
            d.text((10, y + cell // 2 - 6), row_labels[i], fill=INK, font=small)
        if i in marked_rows:
            d.rectangle([2, y, 6, y + cell], fill=WINDOW_COLOUR)
        for j, panel in enumerate(row):
            x = left + j * (cell + 4)
            img.paste(Image.fromarray(resize(panel.rgb, (cell, cell))), (x, y))
            if panel.caption:
                text = panel.caption[: max(8, cell // 6)]
                d.text((x + 2, y + cell + 1), text, fill=INK, font=small)
    if colorbar:
        _colorbar(d, img, colorbar, (width - bar, top), cell)
    return np.asarray(img)


def _colorbar(d, img, colorbar, at: tuple[int, int], cell: int) -> None:
    vmin, vmax, cmap = colorbar
    x, y = at
    h = max(cell, 80)
    ramp = LUTS[cmap][::-1][np.linspace(0, 255, h).astype(int)]  # top = vmax
    img.paste(Image.fromarray(np.repeat(ramp[:, None], 12, 1)), (x + 4, y))
    d.text((x + 20, y - 2), f"{vmax:.3g}", fill=INK, font=font(11))
    d.text((x + 20, y + h - 10), f"{vmin:.3g}", fill=INK, font=font(11))


def chips(
    words: Sequence[str], values: Sequence[float | None], title: str, cmap: str = "viridis"
) -> np.ndarray:
    """The prompt as a line of words, each shaded by its value in ``[0, 1]`` (grey: none),
    the value under it."""
    f, small = font(22), font(15)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    sizes = [int(probe.textlength(w, font=f)) + 16 for w in words]
    width = max(sum(sizes) + 6 * len(words) + 16, int(probe.textlength(title, font=font(15))) + 16)
    img = Image.new("RGB", (width, 110), BACKGROUND)
    d = ImageDraw.Draw(img)
    d.text((8, 4), title, fill=INK, font=font(15))
    x = 8
    for word, v, w in zip(words, values, sizes, strict=True):
        colour = (200, 200, 200) if v is None else tuple(int(c) for c in LUTS[cmap][int(v * 255)])
        d.rectangle([x, 32, x + w, 72], fill=colour)
        ink = INK if v is None or v > 0.55 else (255, 255, 255)
        d.text((x + 8, 39), word, fill=ink, font=f)
        d.text((x + 4, 80), "–" if v is None else f"{v:.2f}", fill=INK, font=small)
        x += w + 6
    return np.asarray(img)


def line_chart(
    series: dict[str, Sequence[float]], title: str, window: int, y_label: str
) -> np.ndarray:
    """Lines over steps (x: step 0..S-1) with the guidance window shaded, for PNGs."""
    w, h, left, top, bottom = 520, 260, 48, 28, 30
    img = Image.new("RGB", (w, h), BACKGROUND)
    d = ImageDraw.Draw(img)
    d.text((8, 4), title, fill=INK, font=font(13))
    n = max((len(v) for v in series.values()), default=1)
    ymax = max((max(v) for v in series.values() if len(v)), default=1.0) or 1.0
    pw, ph = w - left - 110, h - top - bottom

    def xy(i, v):
        return left + pw * i / max(n - 1, 1), top + ph * (1 - v / ymax)

    if window:
        d.rectangle([xy(0, 0)[0], top, xy(window - 1, 0)[0] + 2, top + ph], fill=(253, 224, 200))
        d.text((xy(0, 0)[0] + 2, top + 2), "guidance", fill=WINDOW_COLOUR, font=font(11))
    d.line([left, top, left, top + ph, left + pw, top + ph], fill=INK)
    d.text((left + pw // 2 - 10, h - 16), "step", fill=INK, font=font(11))
    d.text((4, top + ph // 2), y_label[:8], fill=INK, font=font(11))
    d.text((left - 40, top - 4), f"{ymax:.2g}", fill=INK, font=font(11))
    for k, (name, values) in enumerate(series.items()):
        colour = tuple(int(c) for c in LUTS["viridis"][int(40 + 180 * k / max(len(series), 1))])
        pts = [xy(i, v) for i, v in enumerate(values)]
        if len(pts) > 1:
            d.line(pts, fill=colour, width=2)
        d.text((left + pw + 8, top + 14 * k), name[:14], fill=colour, font=font(11))
    return np.asarray(img)
