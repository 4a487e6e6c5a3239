"""One colour per plan object, the same on the canvas, in the chips and in every chart.

An object whose subject names a colour ("two red circles") is drawn in that colour, its
instances in shades of it, so a box never contradicts the prompt's words (red circles in blue
and orange boxes read as a wrong plan). The others take the qualitative palette, skipping hues
close to the colours the prompt already uses.
"""

from __future__ import annotations

import numpy as np

from starvid.parsing import ParsedPrompt
from starvid.plan import Plan
from starvid.viz import PALETTE

Color = tuple[int, int, int]

# Colour words as box colours: saturated and dark enough to read on the light canvas and on
# video frames ("white" is a mid grey, or it would vanish on the grid).
NAMED_COLORS: dict[str, Color] = {
    "red": (214, 39, 40),
    "orange": (240, 120, 10),
    "yellow": (196, 160, 0),
    "gold": (190, 150, 20),
    "green": (44, 160, 44),
    "blue": (31, 90, 200),
    "navy": (20, 40, 130),
    "cyan": (23, 170, 190),
    "turquoise": (30, 175, 160),
    "teal": (0, 128, 128),
    "purple": (128, 60, 180),
    "violet": (140, 80, 200),
    "magenta": (200, 40, 160),
    "pink": (227, 100, 170),
    "brown": (140, 86, 55),
    "beige": (190, 160, 110),
    "black": (30, 30, 30),
    "white": (150, 150, 150),
    "grey": (120, 120, 120),
    "gray": (120, 120, 120),
    "silver": (160, 160, 170),
}
COLOUR_WORDS = frozenset(NAMED_COLORS)
_CLASH = 90.0  # RGB distance under which a palette colour reads as a named one


def subject_colour(parsed: ParsedPrompt, index: int) -> str | None:
    """The first colour word of a subject's phrase ("red" for "two red circles"), or None."""
    for m in parsed.subjects[index].modifiers:
        if m.lemma.lower() in COLOUR_WORDS:
            return m.lemma.lower()
        if m.text.lower() in COLOUR_WORDS:
            return m.text.lower()
    return None


def shades(color: Color, n: int) -> list[Color]:
    """``n`` shades of ``color``, darker to lighter, far enough apart to tell boxes apart."""
    if n == 1:
        return [color]
    out = []
    for t in np.linspace(-0.35, 0.35, n):
        c = np.asarray(color, dtype=float)
        c = c * (1 + t) if t < 0 else c + (255 - c) * t
        out.append(tuple(int(round(v)) for v in np.clip(c, 0, 255)))
    return out


def object_palette(plan: Plan, parsed: ParsedPrompt | None = None) -> dict[str, Color]:
    """One colour per plan object: shades of the subject's colour word where the prompt names
    one (``parsed`` given; all objects of one colour share its shades), the palette's colours in
    plan order otherwise."""
    named: dict[int, str] = {}
    if parsed is not None:
        for i in range(len(parsed.subjects)):
            word = subject_colour(parsed, i)
            if word is not None:
                named[i] = word
    used = [NAMED_COLORS[w] for w in named.values()]
    free = [
        c for c in PALETTE if all(np.linalg.norm(np.subtract(c, u)) > _CLASH for u in used)
    ] or list(PALETTE)
    colors: dict[str, Color] = {}
    by_colour: dict[str, list[str]] = {}  # every object of one colour word, in shades of it
    for o in plan.objects:
        if o.subject in named:
            by_colour.setdefault(named[o.subject], []).append(o.id)
    for word, ids in by_colour.items():
        colors |= dict(zip(ids, shades(NAMED_COLORS[word], len(ids)), strict=True))
    k = 0
    for o in plan.objects:
        if o.id not in colors:
            colors[o.id] = free[k % len(free)]
            k += 1
    return {o.id: colors[o.id] for o in plan.objects}
