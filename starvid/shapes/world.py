"""The shapes world: seeded procedural videos of coloured shapes that move, with exact truth.

A video shows one to three kinds of objects (a kind is a colour and a shape), one to four of
each, all objects of a kind doing the same motion, over a plain or lightly textured grey
background. Every sample carries its caption ("two red circles moving left and a blue square
jumping"), a mask per object and frame, and structured truth (per object: colour, shape, group,
motion, centre trajectory). Nothing is stored: a (seed, settings) pair always gives the same
video.

Objects are drawn 4x supersampled and area-downsampled (soft edges, sub-pixel motion); the mask
of an object is where it covers at least half a pixel. Objects never touch in any frame (a gap of
at least two pixels), so connected components count them exactly.

Held-out split: two-subject caption structures whose hash falls in one bucket of ten are never
produced for training (``sample_scene(..., split="train")``) and are the benchmark's captions
(``sample_eval_scenes``).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from starvid.errors import StarVidError

# Palette (RGB). Hues are at least 50 degrees apart, so the scorer tells them apart by hue alone.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (225, 40, 40),
    "green": (40, 190, 60),
    "blue": (45, 85, 235),
    "yellow": (230, 210, 40),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles"}
MOTIONS: tuple[str, ...] = ("left", "right", "up", "down", "jump", "still")
MOTION_PHRASES = {
    "left": "moving left",
    "right": "moving right",
    "up": "moving up",
    "down": "moving down",
    "jump": "jumping",
    "still": "staying still",
}
# The verb lemma each motion phrase gives in the parse (what the action-binding loss binds).
MOTION_VERBS = {m: ("jump" if m == "jump" else "stay" if m == "still" else "move") for m in MOTIONS}
COUNT_WORDS = {1: "a", 2: "two", 3: "three", 4: "four"}
RESOLUTIONS = (32, 64)

# Every word a caption can contain (the tokenizer of the shapes model has one token per word).
VOCAB: tuple[str, ...] = tuple(
    dict.fromkeys(
        [*COUNT_WORDS.values(), "one", "and"]
        + list(COLORS)
        + list(SHAPES)
        + list(PLURALS.values())
        + [w for p in MOTION_PHRASES.values() for w in p.split()]
    )
)

SUPERSAMPLE = 4
GAP_PX = 2  # minimum distance between object boxes in every frame
PLACEMENT_TRIES = 40  # greedy placements tried before a scene counts as too crowded
HELD_OUT_BUCKETS = 10  # one structure hash bucket in ten is held out for evaluation


@dataclass(frozen=True)
class Group:
    """One subject of a caption: `count` objects of one colour and shape doing one motion."""

    color: str
    shape: str
    count: int
    motion: str

    def phrase(self) -> str:
        """The caption's words for this group, e.g. "two red circles moving left"."""
        noun = self.shape if self.count == 1 else PLURALS[self.shape]
        return f"{COUNT_WORDS[self.count]} {self.color} {noun} {MOTION_PHRASES[self.motion]}"


@dataclass(frozen=True)
class WordSpan:
    """A word of a caption: its role in a group, text, character span and word index."""

    group: int
    role: str  # "count", "color", "noun", "verb" or "direction"
    text: str
    start: int
    end: int
    index: int  # position among the caption's whitespace-separated words


@dataclass
class ObjectTruth:
    """One drawn object: kind, group index, motion and per-frame centre (x, y) in pixels."""

    color: str
    shape: str
    group: int
    motion: str
    size: float
    trajectory: np.ndarray  # (frames, 2) float, pixel units, origin top-left

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return {
            "color": self.color,
            "shape": self.shape,
            "group": self.group,
            "motion": self.motion,
            "size": round(float(self.size), 3),
            "trajectory": np.round(self.trajectory, 3).tolist(),
        }


@dataclass
class Sample:
    """A world video with its caption and truth.

    `video` is uint8 ``(frames, h, w, 3)`` RGB; `masks` is bool ``(objects, frames, h, w)``, one
    per object in `objects` order (objects of group 0 first).
    """

    caption: str
    groups: list[Group]
    objects: list[ObjectTruth]
    video: np.ndarray
    masks: np.ndarray
    words: list[WordSpan] = field(default_factory=list)
    seed: int = 0

    def group_masks(self) -> np.ndarray:
        """Union of each group's object masks: bool ``(groups, frames, h, w)``."""
        out = np.zeros((len(self.groups), *self.masks.shape[1:]), dtype=bool)
        for obj, m in zip(self.objects, self.masks, strict=True):
            out[obj.group] |= m
        return out

    def truth(self) -> dict:
        """Structured ground truth as plain JSON."""
        return {
            "caption": self.caption,
            "groups": [g.__dict__.copy() for g in self.groups],
            "objects": [o.to_dict() for o in self.objects],
            "frames": int(self.video.shape[0]),
            "height": int(self.video.shape[1]),
            "width": int(self.video.shape[2]),
        }


# -- captions ---------------------------------------------------------------------------------


def caption_of(groups: list[Group]) -> str:
    """The natural caption of a list of groups, joined with "and"."""
    return " and ".join(g.phrase() for g in groups)


def caption_words(groups: list[Group]) -> list[WordSpan]:
    """Every word of `caption_of(groups)` with its group, role and character span."""
    words: list[WordSpan] = []
    pos = 0
    index = 0
    for gi, g in enumerate(groups):
        if gi:
            pos += len(" and ")
            index += 1
        noun = g.shape if g.count == 1 else PLURALS[g.shape]
        verb, *rest = MOTION_PHRASES[g.motion].split()
        parts = [("count", COUNT_WORDS[g.count]), ("color", g.color), ("noun", noun)]
        parts += [("verb", verb)] + [("direction", w) for w in rest]
        for k, (role, text) in enumerate(parts):
            if k:
                pos += 1
            words.append(WordSpan(gi, role, text, pos, pos + len(text), index))
            pos += len(text)
            index += 1
    return words


def groups_of_caption(caption: str) -> list[Group]:
    """The groups of a caption in the world's own words (the inverse of ``caption_of``).

    Case and spacing are free; "one" counts as "a", and a noun may be singular or plural
    whatever its count. Anything else raises a one-line StarVidError naming the phrase.
    """
    counts = {word: n for n, word in COUNT_WORDS.items()} | {"one": 1}
    nouns = {s: s for s in SHAPES} | {p: s for s, p in PLURALS.items()}
    motions = {phrase: m for m, phrase in MOTION_PHRASES.items()}
    alternatives = (counts, COLORS, nouns, motions)
    pattern = re.compile(" ".join(f"({'|'.join(map(re.escape, a))})" for a in alternatives))
    words = caption.lower().split()
    if not words:
        raise StarVidError("not a shapes-world caption: it is empty")
    groups = []
    for phrase in " ".join(words).split(" and "):
        match = pattern.fullmatch(phrase)
        if match is None:
            raise StarVidError(
                f"not a shapes-world caption: {phrase!r} is not COUNT COLOUR SHAPE MOTION "
                f"(e.g. {Group('red', 'circle', 2, 'left').phrase()!r})"
            )
        count, color, noun, motion = match.groups()
        groups.append(Group(color, nouns[noun], counts[count], motions[motion]))
    return groups


def structure_key(groups: list[Group]) -> str:
    """Canonical text of a caption's structure (what the held-out split hashes)."""
    return "|".join(f"{g.count}:{g.color}:{g.shape}:{g.motion}" for g in groups)


def is_held_out(groups: list[Group]) -> bool:
    """True for two-subject structures reserved for evaluation (never sampled for training)."""
    if len(groups) != 2:
        return False
    digest = hashlib.sha256(structure_key(groups).encode()).digest()
    return int.from_bytes(digest[:4], "big") % HELD_OUT_BUCKETS == 0


# -- sampling structures ----------------------------------------------------------------------


@dataclass(frozen=True)
class WorldConfig:
    """Settings of the world: resolution, frames, how many kinds and objects, background."""

    size: int = 32
    frames: int = 8
    min_kinds: int = 1
    max_kinds: int = 3
    max_count: int = 4
    max_objects: int = 5
    textured_share: float = 0.5  # share of videos with a lightly textured background
    # Object box side as a share of the frame side (None: 0.26 at 32x32, 0.2 at 64x64; smaller
    # objects make circles and squares alike for a small model, bigger ones leave no room to move).
    object_scale: float | None = None
    travel: float = 0.3  # distance a moving object covers over the clip, share of the frame
    jump_height: float = 0.3
    # Training curricula only (None: uniform, and the same random draws as before they existed,
    # so the benchmark's captions never change): weights of 1..3 kinds, of counts 1..4 and of
    # the motions in MOTIONS order.
    kind_weights: tuple[float, ...] | None = None
    count_weights: tuple[float, ...] | None = None
    motion_weights: tuple[float, ...] | None = None

    def __post_init__(self):
        if self.size not in RESOLUTIONS:
            raise StarVidError(f"world size must be one of {RESOLUTIONS}, got {self.size}")
        if not 8 <= self.frames <= 16:
            raise StarVidError(f"world videos have 8 to 16 frames, got {self.frames}")
        if not 1 <= self.min_kinds <= self.max_kinds <= 3:
            raise StarVidError("kinds per video must satisfy 1 <= min_kinds <= max_kinds <= 3")
        if not 1 <= self.max_count <= 4:
            raise StarVidError(f"max_count must be 1 to 4, got {self.max_count}")
        for name, n in (("kind_weights", 3), ("count_weights", 4), ("motion_weights", 6)):
            w = getattr(self, name)
            if w is not None and (len(w) != n or min(w) < 0 or sum(w) <= 0):
                raise StarVidError(f"{name} needs {n} non-negative weights, not all zero: {w}")

    @property
    def object_size(self) -> float:
        """Side of an object's box in pixels."""
        scale = self.object_scale or (0.26 if self.size <= 32 else 0.2)
        return scale * self.size


def _weighted(rng: np.random.Generator, low: int, high: int, weights) -> int:
    """An integer in ``[low, high]``: uniform without weights (``weights[v - 1]`` weighs v)."""
    if weights is None:
        return int(rng.integers(low, high + 1))
    p = np.asarray(weights[low - 1 : high], dtype=float)
    if p.sum() <= 0:
        p = np.ones_like(p)
    return low + int(rng.choice(len(p), p=p / p.sum()))


def _random_groups(rng: np.random.Generator, cfg: WorldConfig, kinds: int) -> list[Group]:
    """`kinds` distinct kinds; counts drawn in random order within `cfg.max_objects`."""
    all_kinds = [(c, s) for c in COLORS for s in SHAPES]
    picked = rng.choice(len(all_kinds), size=kinds, replace=False)
    counts = [0] * kinds
    budget = cfg.max_objects
    for i, k in enumerate(rng.permutation(kinds)):
        left = kinds - i - 1  # every later group needs at least one object
        high = max(1, min(cfg.max_count, budget - left))
        counts[k] = _weighted(rng, 1, high, cfg.count_weights)
        budget -= counts[k]
    groups = []
    motion_p = None
    if cfg.motion_weights is not None:
        motion_p = np.asarray(cfg.motion_weights, dtype=float) / sum(cfg.motion_weights)
    for k, n in zip(picked, counts, strict=True):
        c, s = all_kinds[int(k)]
        groups.append(Group(c, s, n, str(rng.choice(MOTIONS, p=motion_p))))
    return groups


def sample_groups(
    rng: np.random.Generator, cfg: WorldConfig = WorldConfig(), split: str = "train"
) -> list[Group]:
    """Random groups within the config's limits; `split="train"` never returns held-out ones."""
    if split not in ("train", "any"):
        raise StarVidError(f"split must be 'train' or 'any', got {split!r}")
    for _ in range(1000):
        kinds = int(rng.integers(cfg.min_kinds, cfg.max_kinds + 1))
        groups = _random_groups(rng, cfg, kinds)
        if sum(g.count for g in groups) > cfg.max_objects:
            continue
        if split == "train" and is_held_out(groups):
            continue
        return groups
    raise StarVidError("could not sample groups within the world's limits")


def sample_eval_groups(
    n: int,
    seed: int = 0,
    max_count: int = 3,
    max_objects: int = 4,
    distinct: bool = True,
    cfg: WorldConfig | None = None,
    accept: Callable[[list[Group]], bool] | None = None,
) -> list[list[Group]]:
    """`n` distinct held-out two-subject structures for the benchmark, deterministic in `seed`.

    With `distinct` the two subjects differ in colour, shape and motion, so each is identified
    by its colour and action binding is never trivially right. Only structures that fit the
    frame of `cfg` (default 32x32, 8 frames) are returned: each draws for seeds 0, 1 and 2.
    `accept`, when given, keeps only the structures it returns True for (checked before the
    costlier fit), e.g. one held-out fold of a prompt suite.
    """
    cfg = cfg or WorldConfig()
    rng = np.random.default_rng([seed, 7])
    out: list[list[Group]] = []
    seen: set[str] = set()
    limits = WorldConfig(min_kinds=2, max_kinds=2, max_count=max_count, max_objects=max_objects)
    for _ in range(100_000):
        groups = _random_groups(rng, limits, 2)
        a, b = groups
        if distinct and (a.color == b.color or a.shape == b.shape or a.motion == b.motion):
            continue
        key = structure_key(groups)
        if key in seen or not is_held_out(groups):
            continue
        seen.add(key)
        if accept is not None and not accept(groups):
            continue
        if not all(_fits(groups, s, cfg) for s in range(3)):
            continue
        out.append(groups)
        if len(out) == n:
            return out
    raise StarVidError(f"only {len(out)} held-out structures satisfy these limits, asked for {n}")


def _fits(groups: list[Group], seed: int, cfg: WorldConfig) -> bool:
    rng = np.random.default_rng([seed, 1])
    return any(_place(rng, groups, cfg, cfg.frames) is not None for _ in range(PLACEMENT_TRIES))


# -- trajectories and drawing -----------------------------------------------------------------


def trajectory(
    motion: str, start: tuple[float, float], frames: int, cfg: WorldConfig
) -> np.ndarray:
    """Centre positions ``(frames, 2)`` for a motion that starts at `start` (pixels)."""
    t = np.linspace(0.0, 1.0, frames)
    d = cfg.travel * cfg.size
    x = np.full(frames, start[0], dtype=np.float64)
    y = np.full(frames, start[1], dtype=np.float64)
    if motion == "left":
        x = x - d * t
    elif motion == "right":
        x = x + d * t
    elif motion == "up":
        y = y - d * t
    elif motion == "down":
        y = y + d * t
    elif motion == "jump":
        y = y - cfg.jump_height * cfg.size * np.sin(np.pi * t)
    elif motion != "still":
        raise StarVidError(f"unknown motion {motion!r}; choose one of {', '.join(MOTIONS)}")
    return np.stack([x, y], axis=1)


def _start_range(motion: str, cfg: WorldConfig) -> tuple[float, float, float, float]:
    """Allowed start centres (x0, x1, y0, y1) so that the object stays inside all frames."""
    half = cfg.object_size / 2 + 1.0
    lo, hi = half, cfg.size - half
    d = cfg.travel * cfg.size
    j = cfg.jump_height * cfg.size
    x0, x1, y0, y1 = lo, hi, lo, hi
    if motion == "left":
        x0 = lo + d
    elif motion == "right":
        x1 = hi - d
    elif motion == "up":
        y0 = lo + d
    elif motion == "down":
        y1 = hi - d
    elif motion == "jump":
        y0 = lo + j
    return x0, x1, y0, y1


def _place(
    rng: np.random.Generator, groups: list[Group], cfg: WorldConfig, frames: int
) -> list[ObjectTruth] | None:
    """Sample start positions (many candidates at once) so that no two objects come close."""
    s = cfg.object_size
    half = s / 2 + GAP_PX / 2
    placed: list[ObjectTruth] = []
    boxes = np.empty((4, 0, frames))  # x0, y0, x1, y1 (with the gap) of placed objects per frame
    for gi, g in enumerate(groups):
        x0, x1, y0, y1 = _start_range(g.motion, cfg)
        offsets = _offsets(g.motion, frames, cfg)
        for _ in range(g.count):
            starts = np.stack([rng.uniform(x0, x1, 256), rng.uniform(y0, y1, 256)], axis=1)
            k = _first_free(starts, offsets, half, boxes)
            if k is None:
                return None
            tr = starts[k] + offsets
            box = np.concatenate([tr - half, tr + half], axis=1).T  # (4, frames)
            boxes = np.concatenate([boxes, box[:, None]], axis=1)
            placed.append(ObjectTruth(g.color, g.shape, gi, g.motion, s, tr))
    return placed


def _first_free(starts: np.ndarray, offsets: np.ndarray, half: float, boxes: np.ndarray):
    """Index of the first candidate start whose path keeps clear of every placed box.

    The first 32 candidates are checked alone: most placements that succeed are decided there
    (a scene's placement is retried many times, so this is where drawing a training batch
    spends its time).
    """
    if boxes.shape[1] == 0:
        return 0
    for lo, hi in ((0, 32), (32, len(starts))):
        c = starts[lo:hi, None, :] + offsets  # (chunk, frames, 2)
        cx, cy = c[..., 0][:, None], c[..., 1][:, None]  # (chunk, 1, frames)
        hit = (cx + half > boxes[0]) & (boxes[2] > cx - half)
        hit &= (cy + half > boxes[1]) & (boxes[3] > cy - half)
        free = ~hit.any(axis=(1, 2))
        if free.any():
            return lo + int(np.argmax(free))
    return None


@functools.lru_cache(maxsize=256)
def _offsets(motion: str, frames: int, cfg: WorldConfig) -> np.ndarray:
    """A motion's centre offsets from its start ``(frames, 2)``, read-only (placement tries
    reuse them)."""
    out = trajectory(motion, (0.0, 0.0), frames, cfg)
    out.setflags(write=False)
    return out


def _shape_polygon(shape: str, cx: float, cy: float, s: float) -> np.ndarray | None:
    """Vertices (supersampled pixel units) of a square or triangle; None for a circle."""
    h = s / 2
    if shape == "square":
        return np.array([[cx - h, cy - h], [cx + h, cy - h], [cx + h, cy + h], [cx - h, cy + h]])
    if shape == "triangle":
        # Upright, base as wide as the box: fill ratio 0.5 against 0.785 (circle) and 1 (square).
        return np.array([[cx, cy - h], [cx + h, cy + h], [cx - h, cy + h]])
    return None


def draw_coverage(shape: str, center: tuple[float, float], size: float, hw: tuple[int, int]):
    """Fraction of each pixel an object covers, float32 ``(h, w)`` in [0, 1]."""
    ss = SUPERSAMPLE
    h, w = hw
    canvas = np.zeros((h * ss, w * ss), dtype=np.uint8)
    cx, cy, s = center[0] * ss, center[1] * ss, size * ss
    shift = 4  # cv2 fixed-point bits: sub-pixel vertices
    poly = _shape_polygon(shape, cx - 0.5, cy - 0.5, s)
    if poly is None:
        c = (int(round((cx - 0.5) * 16)), int(round((cy - 0.5) * 16)))
        cv2.circle(canvas, c, int(round(s / 2 * 16)), 255, -1, cv2.LINE_8, shift)
    else:
        pts = np.round(poly * 16).astype(np.int32)
        cv2.fillPoly(canvas, [pts], 255, cv2.LINE_8, shift)
    cov = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return cov


def background(rng: np.random.Generator, cfg: WorldConfig, textured: bool) -> np.ndarray:
    """A grey background ``(h, w)`` float32 in [0, 255]: plain, or with soft low-contrast blobs."""
    level = rng.uniform(25.0, 90.0)
    bg = np.full((cfg.size, cfg.size), level, dtype=np.float32)
    if textured:
        noise = rng.standard_normal((cfg.size, cfg.size)).astype(np.float32)
        noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=cfg.size / 10)
        noise /= max(float(np.abs(noise).max()), 1e-6)
        bg += 12.0 * noise
    return bg


def render(groups: list[Group], seed: int, cfg: WorldConfig = WorldConfig()) -> Sample:
    """Draw a video of the given groups; positions and background follow from `seed`."""
    if not groups:
        raise StarVidError("a world video needs at least one group")
    for g in groups:
        if g.color not in COLORS or g.shape not in SHAPES or g.motion not in MOTIONS:
            raise StarVidError(f"unknown colour, shape or motion in {g}")
        if g.count not in COUNT_WORDS:
            raise StarVidError(f"count must be 1 to 4, got {g.count}")
    rng = np.random.default_rng([seed, 1])
    for _ in range(PLACEMENT_TRIES):
        objects = _place(rng, groups, cfg, cfg.frames)
        if objects is not None:
            break
    else:
        raise StarVidError(f"cannot place {caption_of(groups)!r} at {cfg.size}x{cfg.size}")
    textured = bool(rng.random() < cfg.textured_share)
    bg = background(rng, cfg, textured)
    t, hw = cfg.frames, (cfg.size, cfg.size)
    video = np.repeat(bg[None, :, :, None], 3, axis=3).repeat(t, axis=0)
    masks = np.zeros((len(objects), t, *hw), dtype=bool)
    tints = {g.color: rng.uniform(0.88, 1.0) for g in groups}  # slight brightness jitter
    for oi, obj in enumerate(objects):
        color = np.array(COLORS[obj.color], dtype=np.float32) * tints[obj.color]
        for f in range(t):
            cov = draw_coverage(obj.shape, tuple(obj.trajectory[f]), obj.size, hw)
            video[f] = video[f] * (1 - cov[..., None]) + color * cov[..., None]
            masks[oi, f] = cov >= 0.5
    video = np.clip(np.round(video), 0, 255).astype(np.uint8)
    return Sample(
        caption_of(groups), list(groups), objects, video, masks, caption_words(groups), seed
    )


def sample_scene(seed: int, cfg: WorldConfig = WorldConfig(), split: str = "train") -> Sample:
    """A random world video (groups, placement and background all from `seed`)."""
    rng = np.random.default_rng([seed, 0])
    # Keep the number of kinds of the first draw: crowded multi-kind scenes fail to place more
    # often, and redrawing the kinds as well would make one-kind videos dominate.
    kinds = _weighted(rng, cfg.min_kinds, cfg.max_kinds, cfg.kind_weights)
    fixed = replace(cfg, min_kinds=kinds, max_kinds=kinds)
    for attempt in range(200):
        groups = sample_groups(rng, fixed, split)
        try:
            return render(groups, seed * 31 + attempt, cfg)
        except StarVidError:
            continue  # too crowded for this resolution: draw other groups
    raise StarVidError(f"could not draw a scene for seed {seed}")


def parsed_caption(groups: list[Group]):
    """The exact ``starvid.parsing.ParsedPrompt`` of `caption_of(groups)`, built from the truth.

    Lets benchmarks steer the right words whatever the spaCy parse does (same data types and
    lemmas as ``parse_prompt``: noun = shape, verbs = move/jump/stay, colour as modifier).
    """
    from starvid.parsing import ParsedPrompt, Subject, Word

    caption = caption_of(groups)
    words = caption_words(groups)
    subjects = []
    for gi, g in enumerate(groups):
        mine = [w for w in words if w.group == gi]

        def word(w: WordSpan, lemma: str) -> Word:
            return Word(w.text, lemma, w.start, w.end, w.index)

        by_role = {w.role: w for w in mine}
        head = word(by_role["noun"], g.shape)
        verb = word(by_role["verb"], MOTION_VERBS[g.motion])
        color = word(by_role["color"], g.color)
        span = (mine[0].start, mine[-1].end)
        complements = [word(w, w.text) for w in mine if w.role == "direction"]
        subjects.append(Subject(head, g.count, [verb], [color], span, span, complements))
    return ParsedPrompt(caption, subjects, [])
