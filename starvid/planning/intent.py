"""The intent vocabulary both planners share: what a subject's words say about its place and motion.

:func:`read_intent` reads, for one subject, the words of its own clause (placement, direction,
relations to other subjects) and its verbs into an :class:`Intent`: where it starts and how it
moves (a :class:`Motion`). The heuristic planner lays intents out as boxes; the LLM planner offers
the model only the options an intent leaves open. Instance counts are capped here too
(:func:`cap_counts`) and numbered into ids (:func:`instance_ids`), alike for both planners.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from starvid.parsing import ParsedPrompt, Subject

MAX_INSTANCES = 12
"""At most this many object instances in one plan; larger counts are reduced with a warning."""

# -- what verbs and words mean -------------------------------------------------------------------


@dataclass(frozen=True)
class Motion:
    """How one subject moves over the clip, in fractions of the frame.

    ``dx``/``dy`` are the total travel of the box centre (y grows downward, so a rise has
    ``dy < 0``). ``free_direction``: the sign of ``dx`` may be flipped to head where there is room.
    ``stretch``: travel as far as the frame allows ("across", "from left to right", "from the
    bottom to the top").
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
    route: Route | None = None


@dataclass(frozen=True)
class Route:
    """A path the words name: where it starts and, when they say so, where it ends.

    Per axis (x, y): -1 left or top, 0 the centre, +1 right or bottom, None where the words say
    nothing. "from the top left corner to the bottom right corner": start (-1, -1), end (1, 1);
    "coming from the left": start (-1, None) and no end, so it heads away from its start.
    """

    start: tuple[int | None, int | None]
    end: tuple[int | None, int | None] | None = None

    def step(self, axis: int) -> int:
        """Which way the path goes along ``axis`` (0: x, 1: y): -1, 0 or +1."""
        a = self.start[axis]
        if self.end is None:
            return -a if a else 0
        b = self.end[axis]
        return 0 if a is None or b is None else (b > a) - (b < a)

    def crosses(self, axis: int) -> bool:
        """Whether the path runs from one side of the frame to the other along ``axis``."""
        a, b = self.start[axis], self.end[axis] if self.end else None
        return a is not None and b is not None and abs(b - a) == 2


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

# directions without a start ("from the right" is a route, below)
DIRECTIONS = [
    (r"\b(?:to|towards?)\s+the\s+left\b|\bleftwards?\b", -1),
    (r"\b(?:to|towards?)\s+the\s+right\b|\brightwards?\b", 1),
]

# A place a path starts or ends at: "the left", "left", "the top left corner", "the right edge of
# the frame", "the lower-left", "the left-hand side", "the centre". Its side words land in the
# groups {tag}1 and {tag}2.
_SIDE_WORD = r"top|upper|bottom|lower|left|right|cent(?:er|re)|middle"
_FRAME_NOUN = r"frame|screen|picture|image|video|scene|view|shot|canvas"


def _place(tag: str) -> str:
    return (
        rf"(?:the\s+)?(?:very\s+|far\s+)?(?P<{tag}1>{_SIDE_WORD})(?:[\s-]+(?P<{tag}2>left|right))?"
        r"(?:[\s-]*hand)?(?:\s+(?:side|edge|corner|end|part|half|border))?"
        rf"(?:\s+of\s+the\s+(?:{_FRAME_NOUN}))?\b"
    )


ROUTES = [
    # "from the left side to the right side", "from the top left corner to the bottom right"
    rf"\bfrom\s+{_place('a')}\s+(?:all\s+the\s+way\s+|over\s+|straight\s+)?"
    rf"(?:to|towards?|into)\s+{_place('b')}",
    # "moving right to left", "top to bottom"
    r"\b(?P<a1>left|right|top|bottom)\s+to\s+(?P<b1>left|right|top|bottom)\b",
    # "coming from the left", "falling from the top"
    rf"\bfrom\s+{_place('a')}",
]
_SIDES = {
    "left": (-1, None),
    "right": (1, None),
    "top": (None, -1),
    "upper": (None, -1),
    "bottom": (None, 1),
    "lower": (None, 1),
}
START_X = {-1: 0.25, 0: 0.5, 1: 0.75}  # where a path named "from the left" (centre, right) starts
START_Y = {-1: 0.28, 0: 0.5, 1: 0.72}
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
    # Each reader hides the words it used, so that a looser pattern later does not reuse them.
    text = _read_relation(parsed, index, c0, text, intent)
    text = _read_route(text, intent)
    text = _read_placement(text, intent)
    words = _read_motion_words(parsed, s, (c0, c1), text, intent.route)
    intent.motion = _compose_motion(words, _verb_kinds(s.verb_lemmas), intent)
    return intent


def _read_relation(parsed: ParsedPrompt, index: int, c0: int, text: str, intent: Intent) -> str:
    """Set the first relation to another subject ("above two dogs"); returns the text left."""
    for pattern, name in RELATIONS:
        for m in re.finditer(pattern, text):
            target = _find_target(parsed, index, c0 + m.end())
            if target is not None and intent.relation is None:
                intent.relation, intent.target = name, target
                text = _blank(text, m)
    return text


def _read_route(text: str, intent: Intent) -> str:
    """Set the path a "from ... to ..." phrase names, and its start; returns the text left."""
    for pattern in ROUTES:
        m = re.search(pattern, text)
        if m:
            break
    else:
        return text
    end = _named_side(m, "b") if m.groupdict().get("b1") else None
    route = intent.route = Route(_named_side(m, "a"), end)
    for axis, attr, where in ((0, "x", START_X), (1, "y", START_Y)):
        side = route.start[axis]
        if side is not None and getattr(intent, attr) is None:
            setattr(intent, attr, where[side])
    return _blank(text, m)


def _named_side(m: re.Match[str], tag: str) -> tuple[int | None, int | None]:
    """(x, y) of a place a route names: "top left" is (-1, -1), "the right edge" (1, None)."""
    x = y = None
    for word in (m.groupdict().get(f"{tag}1"), m.groupdict().get(f"{tag}2")):
        if word in ("centre", "center", "middle"):
            x, y = 0 if x is None else x, 0 if y is None else y
        elif word is not None:
            wx, wy = _SIDES[word]
            x, y = wx if wx is not None else x, wy if wy is not None else y
    return x, y


def _read_placement(text: str, intent: Intent) -> str:
    """Set the start position and size words name ("on the left", "in the background")."""
    for pattern, (x, y, size) in PLACEMENTS:
        m = re.search(pattern, text)
        if m:
            intent.x = x if x is not None and intent.x is None else intent.x
            intent.y = y if y is not None and intent.y is None else intent.y
            intent.size *= size or 1.0
            text = _blank(text, m)
    return text


@dataclass
class _MotionWords:
    """What the clause's words say about motion, before the verbs give it an amount.

    ``direction``: -1 left, +1 right, 0 unsaid; ``stretch``: as far as the frame allows;
    ``vertical``: -1 up, +1 down, 0 unsaid; ``stretch_y``: as far as the frame allows
    vertically; ``routed_y``: a route states the vertical path; ``bob``: "up and down".
    """

    direction: int = 0
    stretch: bool = False
    vertical: int = 0
    stretch_y: bool = False
    routed_y: bool = False
    bob: bool = False
    approach: bool = False
    recede: bool = False


def _read_motion_words(
    parsed: ParsedPrompt, s: Subject, clause: tuple[int, int], text: str, route: Route | None
) -> _MotionWords:
    """Direction words in the clause ("to the left", "across", "upward"), verb particles, and
    the route, which wins where it names a way."""
    words = _MotionWords()
    for pattern, sign in DIRECTIONS:
        m = re.search(pattern, text)
        if m:
            words.direction = sign
            text = _blank(text, m)
            break
    if re.search(r"\bacross\b", text):
        words.stretch = True
    _read_particles(parsed, s, clause, words)
    if re.search(UP, text):
        words.vertical = -1
    elif re.search(DOWN, text):
        words.vertical = 1
    words.bob = re.search(UP_AND_DOWN, text) is not None
    words.approach = re.search(APPROACH, text) is not None
    words.recede = re.search(RECEDE, text) is not None
    if route is not None and route.step(0):
        words.direction = route.step(0)
        words.stretch = words.stretch or route.crosses(0)
    if route is not None and route.step(1):
        words.vertical, words.stretch_y, words.routed_y = route.step(1), route.crosses(1), True
    return words


def _read_particles(
    parsed: ParsedPrompt, s: Subject, clause: tuple[int, int], words: _MotionWords
) -> None:
    """Verb particles: "walking left", "climbing up", "falling down" (not "sitting down")."""
    c0, c1 = clause
    for v in s.verbs:
        kind = VERB_MOTIONS.get(v.lemma, ("other", 0))[0]
        after = parsed.prompt[v.end : c1].lower() if c0 <= v.end <= c1 else ""
        m = re.match(r"\s+(left|right|up|down)\b", after)
        if not m or kind in ("still", "sway", "other"):
            continue
        word = m.group(1)
        if word in ("left", "right") and not words.direction:
            words.direction = -1 if word == "left" else 1
        elif word in ("up", "down") and not re.match(_ALONG, after[m.end() :]):
            if not re.match(r"\s+and\s+(?:up|down)\b", after[m.end() :]):
                words.vertical = -1 if word == "up" else 1


def _verb_kinds(lemmas: list[str]) -> dict[str, list]:
    """The motion amounts of a subject's verbs, grouped by kind ("travel": [0.3, 0.45], ...)."""
    by_kind: dict[str, list] = {}
    for kind, amount in (VERB_MOTIONS[v] for v in lemmas if v in VERB_MOTIONS):
        by_kind.setdefault(kind, []).append(amount)
    return by_kind


def _compose_motion(words: _MotionWords, by_kind: dict[str, list], intent: Intent) -> Motion:
    """The Motion that words and verbs describe together (words win where they disagree).

    Also scales ``intent.size`` for approaching, receding, behind and in front.
    """
    speed = max(by_kind.get("travel", [0.0]))
    direction, stretch, vertical = words.direction, words.stretch, words.vertical
    dx = dy = 0.0
    free = False
    hops, hop = 0, 0.0
    if direction or stretch:
        dx = (direction or 1) * (0.8 if stretch else (speed or 0.35))
        free = direction == 0
    elif speed and not words.routed_y:
        dx, free = 0.5 * speed, True  # a gentle stroll toward where there is room
    if "hop" in by_kind or words.bob:
        hops, hop = max(by_kind.get("hop", [(2, 0.5)]), key=lambda h: h[1])
        if hops == 1 and not dx:
            dx, free = 0.15, True  # a single leap goes somewhere
    rise = max(by_kind.get("rise", [0.0]))
    fall = max(by_kind.get("descend", [0.0]))
    if vertical:  # words beat verbs: "a bird flying down"
        dy = vertical * (rise or fall or 0.3)
    elif rise or fall:
        dy = fall - rise
    if words.stretch_y:
        dy = 0.8 * vertical  # "from the bottom to the top": as far as the frame allows
    elif words.routed_y:
        pass  # "from the top left corner": the route states both ways
    elif dy and (direction or stretch):
        dy *= 0.4  # "a bird flying to the left": mostly sideways, a little up
    elif vertical and "travel" in by_kind:
        dy = 0.25 * vertical  # "climbing up the hill"
    scale = 1.0
    chasing = intent.relation in ("toward", "away_from")  # "approaching two cats": not the camera
    approach = not chasing and (words.approach or "approach" in by_kind)
    recede = not chasing and (words.recede or "recede" in by_kind)
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
    return Motion(
        dx=dx,
        dy=dy,
        free_direction=free,
        stretch=stretch or words.stretch_y,
        hops=hops,
        hop=hop,
        scale=scale,
        sway=sway,
    )


# -- counts and ids -----------------------------------------------------------------------------


def cap_counts(parsed: ParsedPrompt) -> tuple[list[int], list[str]]:
    """Instance counts per subject, at most MAX_INSTANCES in all, and warnings naming the cuts.

    A count below 1 plans one instance. Subjects beyond the MAX_INSTANCES-th get 0 (left out of
    the plan); among the others the largest counts are cut first (see :func:`level_down`).
    """
    asked = [max(1, s.count) for s in parsed.subjects]
    kept = level_down(asked[:MAX_INSTANCES], MAX_INSTANCES)
    counts = kept + [0] * (len(asked) - len(kept))
    warnings = []
    if len(counts) > MAX_INSTANCES:
        dropped = ", ".join(s.noun for s in parsed.subjects[MAX_INSTANCES:])
        warnings.append(f"left out {dropped} (at most {MAX_INSTANCES} objects in a plan)")
    for s, before, after in zip(parsed.subjects, asked, counts, strict=True):
        if 0 < after < before:
            warnings.append(
                f"{s.noun}: planned {after} of {before} instances "
                f"(at most {MAX_INSTANCES} objects in a plan)"
            )
    return counts, warnings


def level_down(counts: list[int], limit: int) -> list[int]:
    """Cut positive ``counts`` to sum to at most ``limit``, largest first; ``limit >= len(counts)``.

    The result is what cutting the largest count (the first of equals) by one until the sum fits
    gives, computed in at most ``limit`` passes whatever the counts: a prompt may ask for a
    number with thirty digits. Counts end at a common level L or L + 1 (the later ones of those
    cut keep the + 1).
    """
    if sum(counts) <= limit:
        return list(counts)

    def fitted(level: int) -> int:
        return sum(min(c, level) for c in counts)

    level = max(v for v in range(1, limit + 1) if fitted(v) <= limit)
    out = [min(c, level) for c in counts]
    above = [i for i, c in enumerate(counts) if c > level]
    spare = limit - fitted(level)  # fewer than len(above), else level + 1 would fit
    for i in above[len(above) - spare :]:
        out[i] += 1
    return out


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
