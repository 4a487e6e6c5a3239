"""Planning: from a parsed prompt to a Plan (one box per object instance per frame).

The heuristic planner needs no model. It reads, for each subject, the words of its own clause
(placement, direction, relations to other subjects) and its verbs into an :class:`Intent` (where
it starts, how it moves), then lays the intents out with a small cost search: each subject's
instances form a block (a row or a grid), and the block goes where its preferences are best met
without covering what is already placed, with the whole trajectory inside the frame.

``layout_intents`` is public so that other planners (the LLM planner picks coarse choices such as
a region and a direction) can turn intents into boxes with the same layout and repair rules.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import re
from dataclasses import dataclass, field, replace

import numpy as np

from starvid.errors import StarVidError
from starvid.parsing import ParsedPrompt, Subject
from starvid.plan import MAX_FRAMES, Plan, PlannedObject

MAX_INSTANCES = 12
"""At most this many object instances in one plan; larger counts are reduced with a warning."""

SEPARATION_IOU = 0.1
"""Boxes of different instances overlap by less than this IoU at frame 0."""

PLANNERS = ("auto", "llm", "heuristic")
MARGIN = 0.02  # keep boxes off the very edge of the frame
DEFAULT_Y = 0.55  # subjects stand a little below the middle unless told otherwise

# -- what verbs and words mean -------------------------------------------------------------------


@dataclass(frozen=True)
class Motion:
    """How one subject moves over the clip, in fractions of the frame.

    ``dx``/``dy`` are the total travel of the box centre (y grows downward, so a rise has
    ``dy < 0``). ``free_direction``: the sign of ``dx`` may be flipped to head where there is room.
    ``stretch``: travel as far as the frame allows ("across", "from left to right").
    ``hops`` arcs of ``hop`` box heights each; ``scale`` is the final size over the start size
    (> 1 approaching the camera); ``sway`` a small side-to-side amplitude.
    """

    dx: float = 0.0
    dy: float = 0.0
    free_direction: bool = False
    stretch: bool = False
    hops: int = 0
    hop: float = 0.0
    scale: float = 1.0
    sway: float = 0.0

    @property
    def label(self) -> str:
        """A short name: "still", "left", "right+rise", "hop", "approach", ..."""
        parts = []
        if self.dx and not self.free_direction:
            parts.append("left" if self.dx < 0 else "right")
        elif self.dx:
            parts.append("travel")
        if self.dy < 0:
            parts.append("rise")
        elif self.dy > 0 and self.scale == 1.0:
            parts.append("descend")
        if self.hops:
            parts.append("hop")
        if self.scale > 1:
            parts.append("approach")
        elif self.scale < 1:
            parts.append("recede")
        if self.sway:
            parts.append("sway")
        return "+".join(parts) or "still"


@dataclass
class Intent:
    """What the layout should achieve for one subject (all its instances together).

    ``x``/``y``: preferred start centre (fractions) or None; ``size``: factor on the default
    box size (background < 1 < foreground); ``aspect``: box height over width in frame fractions;
    ``relation`` ("above", "below", "left_of", "right_of", "beside", "behind", "front",
    "toward", "away_from") to subject index ``target``.
    """

    subject: int
    noun: str
    count: int
    verbs: list[str] = field(default_factory=list)
    motion: Motion = field(default_factory=Motion)
    x: float | None = None
    y: float | None = None
    size: float = 1.0
    aspect: float = 1.15
    relation: str | None = None
    target: int | None = None


def _words(*groups: str) -> list[str]:
    return [w for g in groups for w in g.split()]


# verb lemma -> (kind, amount). travel: speed (fraction of the width per clip); hop: (number of
# arcs, arc height in box heights); rise/descend: travel; sway: amplitude; approach/recede: scale.
VERB_MOTIONS: dict[str, tuple[str, float | tuple[int, float]]] = {
    **dict.fromkeys(
        _words("crawl creep stroll amble wander roam waddle limp slither tiptoe inch drift"),
        ("travel", 0.2),
    ),
    **dict.fromkeys(
        _words(
            "walk march trot hike swim paddle row sail move go head skate ski cycle ride pedal",
            "prowl scurry scamper glide slide roll pass cross travel stride strut cruise wade",
            "trek commute migrate patrol pace taxi tow pull push carry lead follow",
        ),
        ("travel", 0.3),
    ),
    **dict.fromkeys(
        _words(
            "run jog gallop drive race sprint dash rush hurry charge chase flee zoom speed",
            "skateboard surf bike escape pursue hunt stampede",
        ),
        ("travel", 0.45),
    ),
    "jump": ("hop", (2, 0.6)),
    **dict.fromkeys(_words("hop bounce skip"), ("hop", (3, 0.4))),
    **dict.fromkeys(_words("leap vault spring bound pounce"), ("hop", (1, 0.8))),
    **dict.fromkeys(
        _words("fly soar rise ascend climb float lift levitate launch"),
        ("rise", 0.35),
    ),
    **dict.fromkeys(
        _words("fall sink land drop descend dive plunge tumble plummet rain parachute"),
        ("descend", 0.35),
    ),
    **dict.fromkeys(
        _words(
            "sit sleep stand lie rest nap perch wait stay pose relax doze kneel squat lay lounge",
            "sunbathe hide hover bask crouch lean",
        ),
        ("still", 0.0),
    ),
    **dict.fromkeys(
        _words("dance sway wave swing wag spin twirl rock shake wiggle bob flutter flap"),
        ("sway", 0.03),
    ),
    **dict.fromkeys(_words("approach advance"), ("approach", 1.6)),
    **dict.fromkeys(_words("leave retreat depart recede"), ("recede", 0.6)),
}

# height over width of the box, in frame fractions (square frames in mind)
TALL_NOUNS = frozenset(
    _words(
        "person man woman boy girl child kid baby people lady gentleman player dancer soldier",
        "astronaut robot penguin giraffe tree tower bottle lighthouse candle statue skyscraper",
        "rocket meerkat chef doctor student teacher worker athlete runner",
    )
)
WIDE_NOUNS = frozenset(
    _words(
        "car bus train truck boat ship horse cow crocodile alligator snake fish whale shark",
        "dolphin airplane plane jet bicycle bike motorcycle lizard elephant bear tiger lion",
        "sofa couch bed table canoe kayak submarine tank van taxi deer wolf fox zebra camel",
    )
)

_SEP = r"(?:\s+(?:the|a|an|its|his|her|their))?\s+"
# relations: pattern -> relation name; the target is the next subject named right after it
RELATIONS: list[tuple[str, str]] = [
    (r"\b(?:to|on|at)\s+the\s+left\s+(?:side\s+)?of\b|\bleft\s+of\b", "left_of"),
    (r"\b(?:to|on|at)\s+the\s+right\s+(?:side\s+)?of\b|\bright\s+of\b", "right_of"),
    (r"\bon\s+top\s+of\b|\babove\b|\bover\b", "above"),
    (r"\bbelow\b|\bunder(?:neath)?\b|\bbeneath\b", "below"),
    (r"\bbeside\b|\bnext\s+to\b|\balongside\b|\bnear\b", "beside"),
    (r"\bbehind\b", "behind"),
    (r"\bin\s+front\s+of\b", "front"),
    (r"\baway\s+from\b|\bflee(?:s|ing)?\b|\bescap(?:e|es|ing)\s+from\b", "away_from"),
    (
        r"\btowards?\b|\bchas(?:e|es|ing)\b|\bfollow(?:s|ing)?\b|\bapproach(?:es|ing)?\b"
        r"|\bpursu(?:e|es|ing)\b|\bhunt(?:s|ing)?\b",
        "toward",
    ),
]

# placement: pattern -> (x, y, size factor); None keeps that field as it is
PLACEMENTS: list[tuple[str, tuple[float | None, float | None, float | None]]] = [
    (r"\b(?:top|upper)[\s-]+left\b", (0.25, 0.28, None)),
    (r"\b(?:top|upper)[\s-]+right\b", (0.75, 0.28, None)),
    (r"\b(?:bottom|lower)[\s-]+left\b", (0.25, 0.72, None)),
    (r"\b(?:bottom|lower)[\s-]+right\b", (0.75, 0.72, None)),
    (r"\b(?:on|at|in)\s+the\s+(?:far\s+)?left(?:\s+side)?\b|\bleft\s+side\b", (0.25, None, None)),
    (
        r"\b(?:on|at|in)\s+the\s+(?:far\s+)?right(?:\s+side)?\b|\bright\s+side\b",
        (0.75, None, None),
    ),
    (r"\b(?:at|on|in)\s+the\s+top\b|\bin\s+the\s+(?:sky|air)\b|\boverhead\b", (None, 0.28, None)),
    (
        r"\b(?:at|on|in)\s+the\s+bottom\b|\bon\s+the\s+(?:ground|floor)\b",
        (None, 0.75, None),
    ),
    (r"\bin\s+the\s+(?:middle|center|centre)\b|\bcent(?:er|re)d\b", (0.5, None, None)),
    (r"\bin\s+the\s+(?:background|distance)\b|\bfar\s+away\b", (None, 0.42, 0.7)),
    (r"\bin\s+the\s+foreground\b|\bup\s+close\b|\bclose[\s-]+up\b", (None, 0.64, 1.25)),
]

TRAVERSE = [
    (r"\bfrom\s+(?:the\s+)?left(?:\s+side)?\s+to\s+(?:the\s+)?right\b|\bleft\s+to\s+right\b", 1),
    (r"\bfrom\s+(?:the\s+)?right(?:\s+side)?\s+to\s+(?:the\s+)?left\b|\bright\s+to\s+left\b", -1),
]
DIRECTIONS = [
    (r"\b(?:to|towards?)\s+the\s+left\b|\bleftwards?\b|\bfrom\s+the\s+right\b", -1),
    (r"\b(?:to|towards?)\s+the\s+right\b|\brightwards?\b|\bfrom\s+the\s+left\b", 1),
]
APPROACH = (
    r"\btowards?\s+(?:the\s+)?(?:camera|viewer|screen|us|lens)\b|\bapproaching\b"
    r"|\b(?:coming|moving|getting|running|walking|driving|flying)\s+closer\b|\bat\s+the\s+camera\b"
)
RECEDE = r"\baway\b|\binto\s+the\s+distance\b"
UP = r"\bupwards?\b|\bup\s+into\b|\bskywards?\b|\binto\s+the\s+(?:sky|air)\b"
DOWN = r"\bdownwards?\b|\bto\s+the\s+(?:ground|floor)\b"
UP_AND_DOWN = r"\bup\s+and\s+down\b"
ALONG_NOUNS = (
    "street road path lane river hallway corridor track runway avenue sidewalk beach trail "
    "highway aisle alley"
)
_ALONG = r"\s+the\s+(?:" + "|".join(ALONG_NOUNS.split()) + r")\b"


def _blank(text: str, m: re.Match[str]) -> str:
    """Hide a matched phrase so later, looser patterns do not read it again."""
    return text[: m.start()] + " " * (m.end() - m.start()) + text[m.end() :]


def _find_target(parsed: ParsedPrompt, index: int, pos: int) -> int | None:
    """The other subject named within a few words after character ``pos`` (no clause break).

    A pronoun right after the relation word ("above them") means the nearest subject before.
    """
    if re.match(r"\s*(?:them|it|him|her)\b", parsed.prompt[pos:].lower()):
        before = [j for j, o in enumerate(parsed.subjects) if j != index and o.head.start < pos]
        return max(before, key=lambda j: parsed.subjects[j].head.start) if before else None
    best = None
    for j, other in enumerate(parsed.subjects):
        start = other.head.start
        if j == index or start < pos or start - pos > 48:
            continue
        between = parsed.prompt[pos:start].lower()
        if re.search(r"[,;.]|\band\b|\bwhile\b|\bwhich\b|\bthat\b", between):
            continue
        if len(between.split()) > 5:
            continue
        if best is None or start < parsed.subjects[best].head.start:
            best = j
    return best


def read_intent(parsed: ParsedPrompt, index: int) -> Intent:
    """Read one subject's placement, relation and motion from its clause and verbs."""
    s: Subject = parsed.subjects[index]
    c0, c1 = s.clause if s.clause[1] > s.clause[0] else (s.phrase[0], len(parsed.prompt))
    text = parsed.prompt[c0:c1].lower()
    intent = Intent(subject=index, noun=s.noun, count=s.count, verbs=s.verb_lemmas)
    if s.noun in TALL_NOUNS:
        intent.aspect = 1.6
    elif s.noun in WIDE_NOUNS:
        intent.aspect = 0.75

    for pattern, name in RELATIONS:
        for m in re.finditer(pattern, text):
            target = _find_target(parsed, index, c0 + m.end())
            if target is not None and intent.relation is None:
                intent.relation, intent.target = name, target
                text = _blank(text, m)

    for pattern, (x, y, size) in PLACEMENTS:
        m = re.search(pattern, text)
        if m:
            intent.x = x if x is not None and intent.x is None else intent.x
            intent.y = y if y is not None and intent.y is None else intent.y
            intent.size *= size or 1.0
            text = _blank(text, m)

    kinds = [VERB_MOTIONS[v] for v in s.verb_lemmas if v in VERB_MOTIONS]
    by_kind: dict[str, list] = {}
    for kind, amount in kinds:
        by_kind.setdefault(kind, []).append(amount)
    speed = max(by_kind.get("travel", [0.0]))

    # horizontal direction words
    direction, stretch = 0, False
    for pattern, sign in TRAVERSE:
        if re.search(pattern, text):
            direction, stretch = sign, True
            text = re.sub(pattern, " ", text)
    if not direction:
        for pattern, sign in DIRECTIONS:
            m = re.search(pattern, text)
            if m:
                direction = sign
                text = _blank(text, m)
                break
    across = re.search(r"\bacross\b", text) is not None
    if across:
        stretch = True

    # verb particles: "walking left", "climbing up", "falling down" (not "sitting down")
    vertical = 0
    for v in s.verbs:
        kind = VERB_MOTIONS.get(v.lemma, ("other", 0))[0]
        after = parsed.prompt[v.end : c1].lower() if c0 <= v.end <= c1 else ""
        m = re.match(r"\s+(left|right|up|down)\b", after)
        if not m or kind in ("still", "sway", "other"):
            continue
        word = m.group(1)
        if word in ("left", "right") and not direction:
            direction = -1 if word == "left" else 1
        elif word in ("up", "down") and not re.match(_ALONG, after[m.end() :]):
            if not re.match(r"\s+and\s+(?:up|down)\b", after[m.end() :]):
                vertical = -1 if word == "up" else 1
    if re.search(UP, text):
        vertical = -1
    elif re.search(DOWN, text):
        vertical = 1
    bob = re.search(UP_AND_DOWN, text) is not None

    dx = dy = 0.0
    free = False
    hops, hop = 0, 0.0
    if direction or stretch:
        dx = (direction or 1) * (0.8 if stretch else (speed or 0.35))
        free = direction == 0
    elif speed:
        dx, free = 0.5 * speed, True  # a gentle stroll toward where there is room
    if "hop" in by_kind or bob:
        hops, hop = max(by_kind.get("hop", [(2, 0.5)]), key=lambda h: h[1])
        if hops == 1 and not dx:
            dx, free = 0.15, True  # a single leap goes somewhere
    rise = max(by_kind.get("rise", [0.0]))
    fall = max(by_kind.get("descend", [0.0]))
    if vertical:  # words beat verbs: "a bird flying down"
        dy = vertical * (rise or fall or 0.3)
    elif rise or fall:
        dy = fall - rise
    if dy and (direction or stretch):
        dy *= 0.4  # "a bird flying to the left": mostly sideways, a little up
    if vertical and "travel" in by_kind and not (direction or stretch):
        dy = 0.25 * vertical  # "climbing up the hill"
    scale = 1.0
    chasing = intent.relation in ("toward", "away_from")  # "approaching two cats": not the camera
    approach = not chasing and (re.search(APPROACH, text) or "approach" in by_kind)
    recede = not chasing and (re.search(RECEDE, text) or "recede" in by_kind)
    if (approach or recede) and free:
        dx = 0.0  # "walking toward the camera": the walk is the approach
    if approach:
        scale, dy = 1.6, dy + 0.06
        intent.size *= 0.8
    elif recede:
        scale, dy = 0.6, dy - 0.06
        intent.size *= 1.15
    if intent.relation in ("above", "below") and dy and not hops:
        dy *= 0.4  # stay above (below) the target while rising or falling
    sway = max(by_kind.get("sway", [0.0])) if not (dx or dy or hops) else 0.0
    if chasing:
        dx, free = dx or max(speed, 0.3), True  # the side follows from where the target is
    if intent.relation == "behind":
        intent.size *= 0.8
    elif intent.relation == "front":
        intent.size *= 1.15
    intent.motion = Motion(
        dx=dx,
        dy=dy,
        free_direction=free,
        stretch=stretch,
        hops=hops,
        hop=hop,
        scale=scale,
        sway=sway,
    )
    return intent


# -- layout --------------------------------------------------------------------------------------


def _times(frames: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)


def _formations(n: int) -> list[tuple[int, int]]:
    """(columns, rows) grids that hold ``n`` instances without an empty row."""
    out = []
    for rows in range(1, min(n, 4) + 1):
        cols = math.ceil(n / rows)
        if (cols, rows) not in out and cols * (rows - 1) < n:
            out.append((cols, rows))
    return out


def _block_offsets(n: int, cols: int, rows: int, w: float, h: float) -> np.ndarray:
    """Instance centres relative to the block centre, shape (n, 2); the last row is centred."""
    gap_x, gap_y = 0.25 * w, 0.2 * h
    out = []
    for i in range(n):
        row, col = divmod(i, cols)
        in_row = min(cols, n - row * cols)
        out.append(((col - (in_row - 1) / 2) * (w + gap_x), (row - (rows - 1) / 2) * (h + gap_y)))
    return np.asarray(out, dtype=float)


def _relative_paths(
    offsets: np.ndarray, w: float, h: float, motion: Motion, sign: float, t: np.ndarray
) -> np.ndarray:
    """Boxes of every instance for a block centred at (0, 0) at frame 0: (n, frames, 4)."""
    scale = 1.0 + (motion.scale - 1.0) * t
    cx = sign * motion.dx * t + motion.sway * np.sin(4 * np.pi * t)
    cy = motion.dy * t - motion.hop * h * np.abs(np.sin(np.pi * motion.hops * t))
    ww, hh = w * scale, h * scale
    base = np.stack([cx - ww / 2, cy - hh / 2, cx + ww / 2, cy + hh / 2], axis=-1)  # (F, 4)
    shift = (
        np.concatenate([offsets, offsets], axis=1)[:, None, :]
        * np.stack([scale, scale, scale, scale], axis=-1)[None]
    )
    return base[None] + shift


def _scaled(motion: Motion, k: float) -> Motion:
    return replace(
        motion,
        dx=motion.dx * k,
        dy=motion.dy * k,
        hop=motion.hop * k,
        scale=1.0 + (motion.scale - 1.0) * k,
        sway=motion.sway * k,
    )


def _fit(
    offsets: np.ndarray, w: float, h: float, motion: Motion, t: np.ndarray
) -> tuple[Motion, float, float]:
    """Shrink the motion (then the boxes) until the block's whole path fits in the frame.

    Returns the motion, the box size factor and how much of the motion was kept (0..1).
    """
    room = 1.0 - 2 * MARGIN
    size, keep = 1.0, 1.0
    for _ in range(60):
        m = _scaled(motion, keep)
        paths = _relative_paths(offsets * size, w * size, h * size, m, 1.0, t)
        span_x = paths[..., 2].max() - paths[..., 0].min()
        span_y = paths[..., 3].max() - paths[..., 1].min()
        if span_x <= room and span_y <= room:
            return m, size, keep
        if keep > 0.35 or size < 0.5:
            keep *= 0.9
        else:
            size *= 0.92
    return _scaled(motion, keep), size, keep


def _overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over the smaller area for every pair: a (..., 4) vs b (M, 4) -> (..., M)."""
    a = a[..., None, :]
    iw = np.clip(np.minimum(a[..., 2], b[:, 2]) - np.maximum(a[..., 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[:, 3]) - np.maximum(a[..., 1], b[:, 1]), 0, None)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return iw * ih / np.minimum(area_a, area_b)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every pair of boxes: a (N, 4) vs b (M, 4) -> (N, M)."""
    a, b = np.asarray(a, float)[:, None, :], np.asarray(b, float)[None]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area_a + area_b - inter)


def _relation_anchors(
    relation: str, target: np.ndarray, bw: float, bh: float
) -> list[tuple[float, float]]:
    """Preferred centres of the box around a block's whole path, given the target's frame-0
    bounding box and that box's width ``bw`` and height ``bh``."""
    x0, y0, x1, y1 = target
    cx, cy, tw, th = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    gap = 0.03
    side = (tw + bw) / 2 + gap
    return {
        "above": [(cx, y0 - gap - bh / 2)],
        "below": [(cx, y1 + gap + bh / 2)],
        "left_of": [(x0 - gap - bw / 2, cy)],
        "right_of": [(x1 + gap + bw / 2, cy)],
        "beside": [(cx - side, cy), (cx + side, cy)],
        "behind": [(cx - 0.9 * side, cy - 0.3 * th), (cx + 0.9 * side, cy - 0.3 * th)],
        "front": [(cx - 0.9 * side, cy + 0.3 * th), (cx + 0.9 * side, cy + 0.3 * th)],
    }.get(relation, [])


def _placement_order(intents: list[Intent]) -> list[int]:
    """Subjects in prompt order, except that a relation's target is placed before it and
    subjects whose words name a place ("on the left") go before those free to go anywhere."""
    order: list[int] = []
    pending = sorted(
        range(len(intents)), key=lambda i: (intents[i].x is None and intents[i].y is None, i)
    )
    while pending:
        ready = [i for i in pending if intents[i].target is None or intents[i].target in order]
        if not ready:  # a cycle of relations: drop the first one
            intents[pending[0]].relation = intents[pending[0]].target = None
            continue
        order.append(ready[0])
        pending.remove(ready[0])
    return order


def _default_anchor(intents: list[Intent], k: int) -> tuple[float, float]:
    """Where subject ``k`` goes when its words say nothing: subjects spread left to right in
    prompt order; something else above (below) it pushes it down (up) and to the middle."""
    x, y = (k + 0.5) / len(intents), DEFAULT_Y
    for other in intents:
        if other.target == k and other.relation in ("above", "below", "behind", "front"):
            x = 0.5
            if other.relation == "above":
                y = 0.7
            elif other.relation == "below":
                y = 0.35
    return x, y


def _base_size(total: int) -> float:
    """Box width for a plan of ``total`` instances: one subject fills ~40% of the width."""
    return min(0.4, 0.42 / math.sqrt(max(total, 1)))


def layout_intents(
    intents: list[Intent], frames: int, seed: int = 0
) -> tuple[list[np.ndarray], list[str]]:
    """Place every subject's instances and their trajectories.

    Returns one array of boxes ``(count, frames, 4)`` per intent (in the intents' order) and
    warnings. Boxes of different instances are kept apart at frame 0 (IoU < ``SEPARATION_IOU``)
    whenever the frame allows it; every box stays inside the frame.
    """
    # relations name subjects; within the layout they point at positions in ``intents``
    position = {it.subject: k for k, it in enumerate(intents)}
    intents = [
        replace(
            it,
            target=position.get(it.target),
            relation=it.relation if it.target in position else None,
        )
        for it in intents
    ]
    t = _times(frames)
    probe = np.unique(np.round(np.linspace(0, frames - 1, min(frames, 16))).astype(int))
    total = sum(i.count for i in intents)
    base = _base_size(total)
    rng = np.random.default_rng(seed)
    order = _placement_order(intents)
    warnings: list[str] = []
    placed0: list[np.ndarray] = []  # frame-0 boxes placed so far
    placed_paths: list[np.ndarray] = []  # (frames_probe, 4) per placed instance
    blocks: dict[int, np.ndarray] = {}  # subject -> frame-0 bounding box of its block
    result: dict[int, np.ndarray] = {}

    for k in order:
        it = intents[k]
        # seed 0 is the canonical layout; other seeds vary sizes and free positions a little
        vary = seed != 0
        w0 = base * it.size / math.sqrt(it.aspect / 1.15) * (rng.uniform(0.9, 1.1) if vary else 1)
        h0 = w0 * it.aspect
        default = _default_anchor(intents, k)
        if vary:
            default = (default[0] + rng.uniform(-0.15, 0.15), default[1] + rng.uniform(-0.1, 0.1))
        for attempt in range(8):  # shrink the boxes until the instances fit apart
            shrink = 0.88**attempt
            best = None
            for cand in _candidates(it, w0 * shrink, h0 * shrink, t):
                cost = _score(cand, it, placed0, placed_paths, blocks, probe, default, rng)
                i = int(np.argmin(cost))
                if best is None or cost[i] < best[0]:
                    best = (float(cost[i]), cand, i)
            start = _placed(best[1], best[2])[:, 0]
            if not placed0 or box_iou(start, np.asarray(placed0)).max() < SEPARATION_IOU:
                break
        else:
            warnings.append(f"{it.noun}: not enough room to keep every instance apart at frame 0")
        _, cand, i = best
        paths = _clamp_into_frame(_placed(cand, i))
        result[k] = paths
        placed0.extend(paths[:, 0])
        placed_paths.extend(paths[:, probe])
        blocks[k] = np.array(
            [paths[:, 0, 0].min(), paths[:, 0, 1].min(), paths[:, 0, 2].max(), paths[:, 0, 3].max()]
        )
        if cand["keep"] < 0.6 and (it.motion.dx or it.motion.dy) and not it.motion.stretch:
            warnings.append(f"{it.noun}: motion shortened to fit in the frame")
    return [result[k] for k in range(len(intents))], warnings


def _candidates(it: Intent, w: float, h: float, t: np.ndarray) -> list[dict]:
    """For each formation and travel sign: every feasible block position and its paths."""
    out = []
    signs = (1.0, -1.0) if it.motion.free_direction and it.motion.dx else (1.0,)
    for cols, rows in _formations(it.count):
        offsets = _block_offsets(it.count, cols, rows, w, h)
        motion, size, keep = _fit(offsets, w, h, it.motion, t)
        for sign in signs:
            rel = _relative_paths(offsets * size, w * size, h * size, motion, sign, t)
            lo_x, hi_x = MARGIN - rel[..., 0].min(), 1 - MARGIN - rel[..., 2].max()
            lo_y, hi_y = MARGIN - rel[..., 1].min(), 1 - MARGIN - rel[..., 3].max()
            xs = np.linspace(lo_x, hi_x, 25) if hi_x > lo_x else np.array([(lo_x + hi_x) / 2])
            ys = np.linspace(lo_y, hi_y, 25) if hi_y > lo_y else np.array([(lo_y + hi_y) / 2])
            gx, gy = np.meshgrid(xs, ys, indexing="ij")
            centres = np.stack([gx.ravel(), gy.ravel()], axis=1)  # (C, 2)
            out.append(
                {
                    "rel": rel,  # (n, F, 4) for a block centred at (0, 0) at frame 0
                    "centres": centres,
                    "sign": sign,
                    "rows": rows,
                    # "across": the longer the traverse the better, but it is no failure
                    "keep": keep if not it.motion.stretch else 0.7 + 0.3 * keep,
                    "size": size,
                }
            )
    return out


def _shifted(cand: dict, frames: np.ndarray | list[int]) -> np.ndarray:
    """Boxes of every candidate position at the given frames: (C, n, len(frames), 4)."""
    c = cand["centres"]
    return cand["rel"][None][:, :, frames] + np.concatenate([c, c], axis=1)[:, None, None, :]


def _placed(cand: dict, i: int) -> np.ndarray:
    """All boxes of candidate position ``i``: (n, frames, 4)."""
    c = cand["centres"][i]
    return cand["rel"] + np.concatenate([c, c])


def _score(
    cand: dict,
    it: Intent,
    placed0: list[np.ndarray],
    placed_paths: list[np.ndarray],
    blocks: dict[int, np.ndarray],
    probe: np.ndarray,
    default: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Cost of every candidate position (lower is better)."""
    rel, start = cand["rel"], cand["centres"]
    first = _shifted(cand, [0])[:, :, 0]  # (C, n, 4)
    mid = _shifted(cand, [rel.shape[1] // 2])[:, :, 0]
    mid_c = np.stack(
        [(mid[..., 0] + mid[..., 2]).mean(1) / 2, (mid[..., 1] + mid[..., 3]).mean(1) / 2], 1
    )
    cost = np.zeros(len(start))
    # where the words put it (start) or, without words, spread subjects left to right (mid-path)
    for axis, wanted in ((0, it.x), (1, it.y)):
        if wanted is not None:
            cost += 3.0 * (start[:, axis] - wanted) ** 2
        else:
            cost += 0.4 * (mid_c[:, axis] - default[axis]) ** 2
    if it.relation and it.target in blocks:
        # the relation should hold over the whole clip: compare the box around the whole path
        rel_union = np.array(
            [rel[..., 0].min(), rel[..., 1].min(), rel[..., 2].max(), rel[..., 3].max()]
        )
        union = rel_union + np.concatenate([start, start], axis=1)
        uc = (union[:, :2] + union[:, 2:]) / 2
        bw, bh = union[0, 2:] - union[0, :2]
        anchors = _relation_anchors(it.relation, blocks[it.target], bw, bh)
        if anchors:
            d = [(uc[:, 0] - ax) ** 2 + (uc[:, 1] - ay) ** 2 for ax, ay in anchors]
            cost += 4.0 * np.min(d, axis=0)
        if it.relation in ("toward", "away_from"):
            tb = blocks[it.target]
            toward = np.sign((tb[0] + tb[2]) / 2 - start[:, 0]) == cand["sign"]
            wrong = ~toward if it.relation == "toward" else toward
            cost += 1.0 * wrong
    if it.motion.free_direction and it.motion.dx and it.relation not in ("toward", "away_from"):
        # head where there is room
        left, right = first[..., 0].min(1), 1 - first[..., 2].max(1)
        ahead, behind = (right, left) if cand["sign"] > 0 else (left, right)
        cost += 0.2 * np.clip(behind - ahead, 0, None) + 0.01 * (cand["sign"] < 0)  # else: read
    if placed0:
        others0 = np.asarray(placed0)
        cost += 60.0 * _overlap(first, others0).sum(axis=(1, 2))
        others = np.asarray(placed_paths)  # (M, P, 4)
        mine = _shifted(cand, probe)  # (C, n, P, 4)
        ov = [_overlap(mine[:, :, p], others[:, p]).sum(axis=(1, 2)) for p in range(len(probe))]
        cost += 1.5 * np.mean(ov, axis=0) + 1.5 * np.max(ov, axis=0)
    cost += 1.0 * (1 - cand["keep"]) + 0.5 * (1 - cand["size"]) + 0.02 * (cand["rows"] - 1)
    cost += 0.005 * rng.random(len(start))  # the seed breaks ties
    return cost


def _clamp_into_frame(boxes: np.ndarray) -> np.ndarray:
    """Shift each box into [0, 1] keeping its size (clip only what is larger than the frame)."""
    b = boxes.copy()
    for lo, hi in ((0, 2), (1, 3)):
        size = np.minimum(b[..., hi] - b[..., lo], 1.0)
        start = np.clip(b[..., lo], 0.0, 1.0 - size)
        b[..., lo], b[..., hi] = start, start + size
    return np.clip(b, 0.0, 1.0)


# -- planners ------------------------------------------------------------------------------------


def _cap_counts(parsed: ParsedPrompt) -> tuple[list[int], list[str]]:
    """Instance counts per subject, at most MAX_INSTANCES in all (largest counts cut first).

    Subjects beyond the MAX_INSTANCES-th get 0 (left out of the plan).
    """
    original = [max(1, s.count) for s in parsed.subjects]
    counts = [c if k < MAX_INSTANCES else 0 for k, c in enumerate(original)]
    warnings = []
    if len(counts) > MAX_INSTANCES:
        dropped = ", ".join(s.noun for s in parsed.subjects[MAX_INSTANCES:])
        warnings.append(f"left out {dropped} (at most {MAX_INSTANCES} objects in a plan)")
    while sum(counts) > MAX_INSTANCES:
        counts[int(np.argmax(counts))] -= 1
    for s, before, after in zip(parsed.subjects, original, counts, strict=True):
        if 0 < after < before:
            warnings.append(
                f"{s.noun}: planned {after} of {before} instances "
                f"(at most {MAX_INSTANCES} objects in a plan)"
            )
    return counts, warnings


def instance_ids(nouns: list[str], counts: list[int]) -> list[list[str]]:
    """Unique ids per instance: "cat-1", "cat-2", ...; numbering continues when a noun repeats."""
    seen: dict[str, int] = {}
    out = []
    for noun, count in zip(nouns, counts, strict=True):
        slug = re.sub(r"[^\w-]+", "_", noun.strip().lower()).strip("_")[:48] or "object"
        ids = []
        for _ in range(count):
            seen[slug] = seen.get(slug, 0) + 1
            ids.append(f"{slug}-{seen[slug]}")
        out.append(ids)
    return out


def plan_from_intents(
    intents: list[Intent],
    frames: int,
    seed: int = 0,
    planner: str = "heuristic",
    prompt: str | None = None,
    warnings: list[str] | None = None,
) -> Plan:
    """Lay out ``intents`` and build the validated Plan (ids numbered per noun)."""
    boxes, layout_warnings = layout_intents(intents, frames, seed)
    ids = instance_ids([i.noun for i in intents], [i.count for i in intents])
    objects = [
        PlannedObject(
            id=ids[k][j],
            noun=it.noun,
            subject=it.subject,
            verbs=list(it.verbs),
            boxes=[tuple(float(round(v, 4)) for v in box) for box in boxes[k][j]],
        )
        for k, it in enumerate(intents)
        for j in range(it.count)
    ]
    return Plan(
        frames=frames,
        objects=objects,
        planner=planner,
        prompt=prompt,
        warnings=list(warnings or []) + layout_warnings,
    )


def heuristic_plan(parsed: ParsedPrompt, frames: int = 16, seed: int = 0) -> Plan:
    """Plan boxes and trajectories from the words alone (deterministic for prompt and seed)."""
    _check_frames(frames)
    if not parsed.subjects:
        raise StarVidError("the prompt has no subject to plan")
    counts, warnings = _cap_counts(parsed)
    intents = []
    for k, count in enumerate(counts):
        if count:
            intent = read_intent(parsed, k)
            intent.count = count
            intents.append(intent)
    return plan_from_intents(
        intents, frames, seed, planner="heuristic", prompt=parsed.prompt, warnings=warnings
    )


def _check_frames(frames: int) -> None:
    if isinstance(frames, bool) or not isinstance(frames, int | np.integer):
        raise StarVidError(f"frames must be a whole number, got {frames!r}")
    if not 1 <= frames <= MAX_FRAMES:
        raise StarVidError(f"frames must be between 1 and {MAX_FRAMES}, got {frames}")


def _llm_module():
    """``starvid.llm_planning`` or None when that module does not exist (yet)."""
    try:
        return importlib.import_module("starvid.llm_planning")
    except ModuleNotFoundError as exc:
        if exc.name != "starvid.llm_planning":
            raise
        return None


def make_plan(
    prompt_or_parsed: str | ParsedPrompt,
    frames: int = 16,
    seed: int = 0,
    planner: str = "auto",
    model: str | None = None,
) -> Plan:
    """Plan a prompt with the chosen planner ("auto": the LLM when available, else heuristic)."""
    _check_frames(frames)
    if planner not in PLANNERS:
        raise StarVidError(f"unknown planner '{planner}' (choose from {', '.join(PLANNERS)})")
    if isinstance(prompt_or_parsed, ParsedPrompt):
        parsed = prompt_or_parsed
    else:
        from starvid.parsing import parse_prompt

        parsed = parse_prompt(prompt_or_parsed)
    plan = None
    if planner != "heuristic":
        llm = _llm_module()
        if llm is None and planner == "llm":
            raise StarVidError("the LLM planner is not installed in this build")
        if llm is not None and llm.llm_available(model):
            plan = llm.llm_plan(parsed, frames, seed, model=model)
        elif planner == "llm":
            if model is not None and importlib.util.find_spec("llama_cpp") is not None:
                llm.resolve_model(model, download=True)  # raises with the precise reason
            raise StarVidError(
                "no LLM planner model available"
                + (f" ({model})" if model else "")
                + "; use --planner heuristic or give --model"
            )
    if plan is None:
        plan = heuristic_plan(parsed, frames=frames, seed=seed)
    plan.prompt = parsed.prompt
    return plan


def describe_motion(obj: PlannedObject, still: float = 0.03) -> str:
    """Name an object's motion from its boxes: "left", "right", "rise", "hop", "still", ...

    Joined with "+" when several apply ("right+rise"). ``still`` is the smallest travel (in frame
    fractions) that counts as movement.
    """
    b = np.asarray(obj.boxes, dtype=float)
    c = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)
    size = np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
    parts = []
    dx, dy = c[-1] - c[0]
    if abs(dx) > still:
        parts.append("right" if dx > 0 else "left")
    line = c[0, 1] + (c[-1, 1] - c[0, 1]) * _times(len(b))
    if (line - c[:, 1]).max() > max(still, 0.25 * abs(dy)):
        parts.append("hop")
    elif abs(dy) > still:
        parts.append("rise" if dy < 0 else "descend")
    ratio = size[-1] / size[0]
    if ratio > 1.15:
        parts.append("approach")
    elif ratio < 1 / 1.15:
        parts.append("recede")
    return "+".join(parts) or "still"
