"""Few-shot prompts, GBNF grammars and box geometry for the two-stage LLM planner.

Two output modes share the same few-shot examples:

* ``coarse``: the model picks among named options (column, row, size; direction, speed) and
  code maps them to boxes. Small models choose well among a few named options.
* ``raw``: the model writes box corners as integers 0-100 (percent of the frame).

Object ids, their order and their count are literals in the grammar, so the output always has
exactly one line per planned instance. Where the prompt itself states a position or a direction
for a subject ("on the left", "walking to the right"), the coarse grammar only offers the options
that agree with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

COLUMNS = ("left", "centre", "right")
ROWS = ("top", "middle", "bottom")
SIZES = ("small", "medium", "large")
DIRECTIONS = ("left", "right", "up", "down", "toward", "away", "bounce", "still")
SPEEDS = ("slow", "medium", "fast")
MODES = ("coarse", "raw")

COLUMN_X = {"left": 0.22, "centre": 0.5, "right": 0.78}
ROW_Y = {"top": 0.28, "middle": 0.5, "bottom": 0.72}
_SIZE_WH = {"small": 0.2, "medium": 0.3, "large": 0.42}
# Displacement over the whole clip, as a fraction of the frame.
_MIN_TRAVEL = 0.2
_SPEED_DIST = {"slow": 0.2, "medium": 0.35, "fast": 0.55}

INSTRUCTIONS = {
    "coarse": (
        "Plan a video in two steps. Layout: for each object, where it is in the first frame "
        "(column: left, centre or right; row: top, middle or bottom) and its size (small, medium "
        "or large); different objects go to different places. Motion: for each object, a "
        "direction (left, right, up, down, toward, away, bounce or still) and a speed (slow, "
        "medium or fast). Follow the words of the video; an object that does not move is still."
    ),
    "raw": (
        "Plan a video in two steps. Layout: for each object, its box in the first frame as "
        "x0 y0 x1 y1, in percent of the frame width and height from the top left corner (0 to "
        "100, x0 < x1, y0 < y1); different objects go to different places. Motion: for each "
        "object, its first box, then -> and its box in the last frame. Follow the words of the "
        "video: to the left x gets smaller, to the right x gets larger, up y gets smaller, down "
        "y gets larger, toward the camera the box grows; an object that does not move keeps "
        "its box."
    ),
}


@dataclass
class ObjectSpec:
    """One instance to plan, with the options the prompt leaves open for it."""

    id: str
    noun: str
    subject: int
    verbs: list[str]
    columns: tuple[str, ...] = COLUMNS
    rows: tuple[str, ...] = ROWS
    directions: tuple[str, ...] = DIRECTIONS
    sizes: tuple[str, ...] = SIZES

    @property
    def label(self) -> str:
        return f"{self.id} ({', '.join(self.verbs)})" if self.verbs else self.id


@dataclass
class Example:
    """A worked few-shot example: per object (id, verbs, column row size, direction speed)."""

    prompt: str
    objects: list[tuple[str, list[str], str, str]] = field(default_factory=list)


EXAMPLES = [
    Example(
        "a red car driving to the left on a road",
        [("car-1", ["drive"], "right bottom large", "left fast")],
    ),
    Example(
        "three cats sitting on a sofa",
        [
            ("cat-1", ["sit"], "left middle medium", "still"),
            ("cat-2", ["sit"], "centre middle medium", "still"),
            ("cat-3", ["sit"], "right middle medium", "still"),
        ],
    ),
    Example(
        "two birds flying up into the sky",
        [
            ("bird-1", ["fly"], "left bottom small", "up medium"),
            ("bird-2", ["fly"], "right middle small", "up medium"),
        ],
    ),
    Example(
        "a dog jumping on the left and a ball rolling to the right",
        [
            ("dog-1", ["jump"], "left bottom medium", "bounce medium"),
            ("ball-1", ["roll"], "centre bottom small", "right medium"),
        ],
    ),
    Example(
        "a man walking toward the camera and two horses running across a field",
        [
            ("man-1", ["walk"], "centre middle small", "toward slow"),
            ("horse-1", ["run"], "left bottom medium", "right fast"),
            ("horse-2", ["run"], "left top small", "right fast"),
        ],
    ),
    Example(
        "a leaf falling down while a girl reads a book",
        [
            ("leaf-1", ["fall"], "right top small", "down medium"),
            ("girl-1", ["read"], "left middle large", "still"),
        ],
    ),
]


# -- geometry --------------------------------------------------------------------------------


def coarse_box(column: str, row: str, size: str) -> np.ndarray:
    """The box ``[x0, y0, x1, y1]`` for a named region and size."""
    cx, cy, half = COLUMN_X[column], ROW_Y[row], _SIZE_WH[size] / 2
    return np.array([cx - half, cy - half, cx + half, cy + half])


def coarse_keyframes(
    box: np.ndarray, direction: str, speed: str, frames: int
) -> dict[int, np.ndarray]:
    """Keyframe boxes for a named motion starting at ``box`` (fitted into the frame)."""
    last = max(frames - 1, 0)
    box = np.asarray(box, dtype=float)
    if direction == "still" or last == 0:
        return {0: box.copy()}
    d = _SPEED_DIST.get(speed, _SPEED_DIST["medium"])
    if direction in ("left", "right", "up", "down"):
        # The start was chosen first: travel only as far as the frame allows from there, but
        # at least a visible distance (the path is then shifted inside the frame).
        room = {"left": box[0], "right": 1 - box[2], "up": box[1], "down": 1 - box[3]}
        d = max(min(d, room[direction]), min(d, _MIN_TRAVEL))
        step = {"left": (-d, 0), "right": (d, 0), "up": (0, -d), "down": (0, d)}[direction]
        end = box + np.array([step[0], step[1], step[0], step[1]])
        keys = {0: box, last: end}
    elif direction in ("toward", "away"):
        factor = 1 + 1.5 * d if direction == "toward" else 1 / (1 + 1.5 * d)
        keys = {0: box, last: scale_box(box, factor)}
    else:  # bounce: two hops up and back down
        hop = np.array([0, -0.6 * d, 0, -0.6 * d])
        marks = np.linspace(0, last, 5).round().astype(int)
        keys = {int(m): box + (hop if k % 2 else 0) for k, m in enumerate(marks)}
    return fit_inside(keys)


def scale_box(box: np.ndarray, factor: float) -> np.ndarray:
    """``box`` scaled about its centre."""
    c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    half = np.array([box[2] - box[0], box[3] - box[1]]) / 2 * factor
    return np.concatenate([c - half, c + half])


def fit_inside(keys: dict[int, np.ndarray], max_size: float = 0.95) -> dict[int, np.ndarray]:
    """Keep a whole trajectory inside the frame.

    Boxes larger than ``max_size`` shrink about their centre; a path wider than the frame is
    compressed towards its mean; then the whole path is shifted inside, so its shape is kept.
    """
    frames = sorted(keys)
    b = np.array([keys[f] for f in frames], dtype=float)
    for axis in (0, 1):
        lo, hi = axis, axis + 2
        size = np.minimum(b[:, hi] - b[:, lo], max_size)
        centre = (b[:, lo] + b[:, hi]) / 2
        span = (centre + size / 2).max() - (centre - size / 2).min()
        if span > 1.0:
            room = 1.0 - size.max()
            extent = np.ptp(centre)
            alpha = room / extent if extent > 0 else 0.0
            centre = centre.mean() + (centre - centre.mean()) * alpha
        shift = max(0.0, -(centre - size / 2).min()) - max(0.0, (centre + size / 2).max() - 1.0)
        centre = centre + shift
        b[:, lo], b[:, hi] = centre - size / 2, centre + size / 2
    b = np.clip(b, 0.0, 1.0)
    return {f: b[i] for i, f in enumerate(frames)}


def to_percent(box: Sequence[float]) -> str:
    """A box as four integers 0-100 separated by spaces."""
    return " ".join(str(int(round(float(v) * 100))) for v in box)


# -- prompts ---------------------------------------------------------------------------------


def _example_lines(ex: Example, mode: str, frames: int = 16) -> tuple[list[str], list[str]]:
    layout, motion = [], []
    for oid, verbs, where, move in ex.objects:
        label = f"{oid} ({', '.join(verbs)})" if verbs else oid
        box = coarse_box(*where.split())
        if mode == "coarse":
            layout.append(f"{oid}: {where}")
            motion.append(f"{label}: {move}")
            continue
        direction, *speed = move.split()
        keys = coarse_keyframes(box, direction, speed[0] if speed else "medium", frames)
        if direction == "bounce":  # raw mode has a first and a last box only
            keys = {0: keys[0], frames - 1: keys[0]}
        first, last = keys[min(keys)], keys[max(keys)]
        layout.append(f"{oid}: {to_percent(first)}")
        motion.append(f"{label}: {to_percent(first)} -> {to_percent(last)}")
    return layout, motion


@lru_cache(maxsize=4)
def document(mode: str) -> str:
    """The few-shot document both stages continue: instructions and worked examples."""
    parts = [INSTRUCTIONS[mode], ""]
    for ex in EXAMPLES:
        labels = ", ".join(f"{o} ({', '.join(v)})" if v else o for o, v, _, _ in ex.objects)
        layout, motion = _example_lines(ex, mode)
        parts += [
            f"Video: {ex.prompt}",
            f"Objects: {labels}",
            "Layout:",
            *layout,
            "Motion:",
            *motion,
            "",
        ]
    return "\n".join(parts)


def layout_prompt(prompt: str, objects: Sequence[ObjectSpec], mode: str) -> str:
    """Stage 1 prompt: the document, then the query up to its layout."""
    labels = ", ".join(o.label for o in objects)
    return f"{document(mode)}\nVideo: {_one_line(prompt)}\nObjects: {labels}\nLayout:\n"


def motion_prompt(stage1_prompt: str, layout_text: str) -> str:
    """Stage 2 prompt: stage 1's prompt and answer, then the motion section.

    Continuing the same text lets llama.cpp reuse the evaluated prefix (its KV cache).
    """
    return f"{stage1_prompt}{layout_text}Motion:\n"


def _one_line(text: str) -> str:
    # Control characters in a user prompt must not break the few-shot document's layout.
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


# -- grammars --------------------------------------------------------------------------------


def gbnf_literal(text: str) -> str:
    """``text`` as a quoted GBNF string literal."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif not ch.isprintable():
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _alternatives(options: Sequence[str]) -> str:
    return "(" + " | ".join(gbnf_literal(o) for o in options) + ")"


_PERCENT_RULE = 'pct ::= "100" | [1-9] [0-9] | [0-9]'
_BOX_RULE = 'box ::= pct " " pct " " pct " " pct'


def layout_grammar(objects: Sequence[ObjectSpec], mode: str) -> str:
    """GBNF for stage 1: one line per object, ids and order fixed."""
    rules, root = [], []
    for i, obj in enumerate(objects):
        name = f"obj{i}"
        if mode == "coarse":
            body = (
                f'{_alternatives(obj.columns)} " " {_alternatives(obj.rows)} " " '
                f"{_alternatives(obj.sizes)}"
            )
        else:
            body = "box"
        rules.append(f'{name} ::= {gbnf_literal(obj.id + ": ")} {body} "\\n"')
        root.append(name)
    rules.insert(0, "root ::= " + " ".join(root))
    if mode == "raw":
        rules += [_BOX_RULE, _PERCENT_RULE]
    return "\n".join(rules) + "\n"


def motion_grammar(
    objects: Sequence[ObjectSpec], mode: str, starts: Sequence[str] | None = None
) -> str:
    """GBNF for stage 2. In raw mode the first-frame box is a literal taken from stage 1."""
    rules, root = [], []
    for i, obj in enumerate(objects):
        name = f"obj{i}"
        if mode == "coarse":
            moving = [d for d in obj.directions if d != "still"]
            alts = []
            if moving:
                alts.append(f'{_alternatives(moving)} " " {_alternatives(SPEEDS)}')
            if "still" in obj.directions:
                alts.append('"still"')
            body = "(" + " | ".join(alts) + ")"
        else:
            body = f"{gbnf_literal((starts[i] if starts else '') + ' -> ')} box"
        rules.append(f'{name} ::= {gbnf_literal(obj.label + ": ")} {body} "\\n"')
        root.append(name)
    rules.insert(0, "root ::= " + " ".join(root))
    if mode == "raw":
        rules += [_BOX_RULE, _PERCENT_RULE]
    return "\n".join(rules) + "\n"
