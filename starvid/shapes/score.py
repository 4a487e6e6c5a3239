"""Exact scoring of shapes-world videos with OpenCV: objects per frame, tracks, caption checks.

Per frame, each palette colour gets a coverage map: the pixel's chroma (max - min of RGB, linear in
how much of the pixel a saturated object covers over a grey background) divided by the palette
colour's chroma, where the pixel's hue is nearest that colour's. Pixels covered at least half are
the colour's mask (the world's own mask rule); its 4-connected components, minus specks, are the
objects. A component's shape comes from its coverage upsampled 4x: the fill ratio of its contour's
bounding box (square ~1, circle ~0.79, upright triangle ~0.5).

Per video, objects are linked into tracks across frames (Hungarian matching on centroids) and a
track's motion is read from its centroid path: left, right, up, down, jump (up and back in an arc)
or still. A caption's groups are then checked: count (and plausible size), colour and shape,
motion of every object, and action binding (every subject moves as its own verb says).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from starvid.errors import StarVidError
from starvid.shapes.world import COLORS, MOTIONS, Group, WorldConfig

MIN_COVERAGE = 0.5
HUE_TOLERANCE = 14  # OpenCV hue units (degrees / 2); palette hues are >= 25 units apart
FILL_SQUARE = 0.87  # fill ratio at or above: square
FILL_CIRCLE = 0.67  # fill ratio at or above (and below FILL_SQUARE): circle; below: triangle
MOVE_SHARE = 0.12  # net displacement (share of the frame side) that counts as moving
CATEGORIES = ("numeracy", "attribute", "motion", "action_binding", "all")


def _palette_hue_chroma() -> dict[str, tuple[float, float]]:
    out = {}
    for name, rgb in COLORS.items():
        px = np.array([[rgb]], dtype=np.uint8)
        hue = float(cv2.cvtColor(px, cv2.COLOR_RGB2HSV)[0, 0, 0])
        out[name] = (hue, float(max(rgb) - min(rgb)))
    return out


_PALETTE = _palette_hue_chroma()


@dataclass
class Detection:
    """One object found in one frame."""

    color: str
    shape: str
    area: float  # coverage-weighted pixels
    x: float  # centroid, pixels
    y: float
    fill: float


@dataclass
class Track:
    """An object followed over frames: (frame, x, y) points and its motion label."""

    color: str
    shape: str
    points: list[tuple[int, float, float]]
    motion: str = "still"


def coverage_maps(frame: np.ndarray) -> dict[str, np.ndarray]:
    """Per palette colour, the share of each pixel it covers: float32 ``(h, w)`` in [0, 1]."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise StarVidError(f"a frame must be uint8 (h, w, 3) RGB, got {frame.dtype} {frame.shape}")
    f = frame.astype(np.float32)
    chroma = f.max(axis=2) - f.min(axis=2)
    hue = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)[..., 0].astype(np.float32)
    names = list(_PALETTE)
    dist = np.stack([_hue_dist(hue, _PALETTE[n][0]) for n in names])
    nearest = dist.argmin(axis=0)
    out = {}
    for i, n in enumerate(names):
        ok = (nearest == i) & (dist[i] <= HUE_TOLERANCE)
        out[n] = np.where(ok, np.clip(chroma / _PALETTE[n][1], 0.0, 1.0), 0.0).astype(np.float32)
    return out


def _hue_dist(hue: np.ndarray, ref: float) -> np.ndarray:
    d = np.abs(hue - ref)
    return np.minimum(d, 180.0 - d)


def classify_shape(coverage: np.ndarray) -> tuple[str, float]:
    """Shape of one object from its coverage crop: (name, fill ratio of its bounding box)."""
    up = cv2.resize(coverage, None, fx=4, fy=4, interpolation=cv2.INTER_LINEAR)
    binary = (up >= MIN_COVERAGE).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return "none", 0.0
    c = max(contours, key=cv2.contourArea)
    x, y, w, h = cv2.boundingRect(c)
    fill = float(binary[y : y + h, x : x + w].sum()) / float(max(w * h, 1))
    if fill >= FILL_SQUARE:
        return "square", fill
    if fill >= FILL_CIRCLE:
        return "circle", fill
    return "triangle", fill


def detect_frame(frame: np.ndarray, min_area: float = 6.0) -> list[Detection]:
    """All objects of the palette's colours in one RGB frame (components smaller than
    `min_area` coverage-weighted pixels are ignored)."""
    found = []
    for color, cov in coverage_maps(frame).items():
        mask = (cov >= MIN_COVERAGE).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
        for k in range(1, n):
            x, y, w, h = stats[k, :4]
            # Let the object's soft edge (pixels under half covered) into its crop.
            x0, y0 = max(x - 1, 0), max(y - 1, 0)
            x1, y1 = min(x + w + 1, mask.shape[1]), min(y + h + 1, mask.shape[0])
            grown = cv2.dilate((labels == k).astype(np.uint8), np.ones((3, 3), np.uint8))
            crop = (cov * grown)[y0:y1, x0:x1]
            area = float(crop.sum())
            if area < min_area:
                continue
            ys, xs = np.mgrid[y0:y1, x0:x1]
            cx = float((crop * xs).sum() / area) + 0.5
            cy = float((crop * ys).sum() / area) + 0.5
            shape, fill = classify_shape(np.pad(crop, 2))
            found.append(Detection(color, shape, area, cx, cy, fill))
    return found


def detect_video(video: np.ndarray, min_area: float | None = None) -> list[list[Detection]]:
    """Detections of every frame of a uint8 ``(frames, h, w, 3)`` RGB video."""
    if video.ndim != 4:
        raise StarVidError(f"a video must be (frames, h, w, 3), got shape {video.shape}")
    if min_area is None:
        min_area = 0.08 * WorldConfig(size=_world_size(video)).object_size ** 2
    return [detect_frame(f, min_area) for f in video]


def _world_size(video: np.ndarray) -> int:
    return 32 if video.shape[1] <= 48 else 64


def classify_motion(points: list[tuple[int, float, float]], side: int) -> str:
    """Motion label of a centroid path [(frame, x, y)] in a frame of `side` pixels."""
    if len(points) < 2:
        return "still"
    p = np.array(points, dtype=np.float64)
    k = max(1, len(p) // 4)  # average a few points at each end against jitter
    start, end = p[:k, 1:].mean(0), p[-k:, 1:].mean(0)
    dx, dy = end - start
    thr = MOVE_SHARE * side
    if max(abs(dx), abs(dy)) >= thr:
        if abs(dx) >= abs(dy):
            return "right" if dx > 0 else "left"
        return "down" if dy > 0 else "up"
    rise = min(start[1], end[1]) - p[:, 2].min()  # up is negative y
    mid = p[k:-k, 2] if len(p) > 2 * k else p[:, 2]
    if rise >= thr and mid.size and mid.min() <= p[:, 2].min() + 1e-6:
        return "jump"
    return "still"


def build_tracks(frames: list[list[Detection]], side: int, key=None) -> list[Track]:
    """Link detections over frames (Hungarian on centroid distance) into tracks.

    `key(d)` selects the detections to track together (default: all). Tracks present in under
    half of the frames are dropped (flicker).
    """
    max_link = 0.3 * side
    tracks: list[Track] = []
    active: list[int] = []
    for f, dets in enumerate(frames):
        dets = [d for d in dets if key is None or key(d)]
        if active and dets:
            last = np.array([tracks[t].points[-1][1:] for t in active])
            cur = np.array([(d.x, d.y) for d in dets])
            cost = np.linalg.norm(last[:, None] - cur[None], axis=2)
            rows, cols = linear_sum_assignment(cost)
            pairs = [(r, c) for r, c in zip(rows, cols, strict=True) if cost[r, c] <= max_link]
        else:
            pairs = []
        matched = {c for _, c in pairs}
        next_active = []
        for r, c in pairs:
            tracks[active[r]].points.append((f, dets[c].x, dets[c].y))
            next_active.append(active[r])
        for c, d in enumerate(dets):
            if c not in matched:
                tracks.append(Track(d.color, d.shape, [(f, d.x, d.y)]))
                next_active.append(len(tracks) - 1)
        active = next_active
    kept = [t for t in tracks if len(t.points) * 2 >= len(frames)]
    for t in kept:
        t.motion = classify_motion(t.points, side)
    return kept


@dataclass
class GroupScore:
    """Checks of one caption group in one video."""

    color: str
    shape: str
    count: int
    motion: str
    detected_count: int
    count_ok: bool
    size_ok: bool
    attribute_ok: bool
    shapes_seen: dict[str, int]
    motions_seen: list[str]
    motion_ok: bool


@dataclass
class VideoScore:
    """Per-group checks and the per-video category results."""

    groups: list[GroupScore]
    numeracy: bool
    attribute: bool
    motion: float  # share of groups whose objects all move right
    action_binding: bool
    all: bool
    extra_objects: int = 0  # objects of colours the caption does not name (median per frame)
    notes: list[str] = field(default_factory=list)

    @property
    def motion_leak(self) -> bool:
        """A subject does another subject's motion instead of its own (every object of it moves
        the other's way): the failure the syntax-aware loss is for. Staying still when another
        subject is told "still" does not count: that is a subject not moving, not an action
        given to the wrong noun (held by a layout-only plan's fixed boxes, every subject is)."""
        return any(
            g.motions_seen
            and not g.motion_ok
            and any(
                set(g.motions_seen) == {o.motion}
                for o in self.groups
                if o.motion not in (g.motion, "still")
            )
            for g in self.groups
        )

    def to_dict(self) -> dict:
        """Plain JSON."""
        return asdict(self)


def seen_motion(group: GroupScore) -> str:
    """The one motion a group's objects were seen doing: ``"none"`` when none was tracked,
    ``"mixed"`` when its objects did different things."""
    seen = set(group.motions_seen)
    return "none" if not seen else seen.pop() if len(seen) == 1 else "mixed"


def _expected_area(shape: str, cfg: WorldConfig) -> float:
    s = cfg.object_size
    return {"square": s * s, "circle": np.pi * s * s / 4, "triangle": s * s / 2}[shape]


def score_video(
    video: np.ndarray, groups: list[Group], cfg: WorldConfig | None = None
) -> VideoScore:
    """Score a uint8 ``(frames, h, w, 3)`` RGB video against the caption's groups.

    A group is found by its colour when no other group shares that colour, else by colour and
    shape. Numeracy: the count seen in most frames is the group's count and objects have about
    the right size. Attribute: the colour is there and its objects have the group's shape.
    Motion: every object of the group (track) moves as the group's motion. Action binding: every
    group's motion is right. Objects of colours the caption does not name (in most frames) fail
    numeracy.
    """
    if not groups:
        raise StarVidError("score_video needs at least one group")
    side = int(video.shape[2])
    cfg = cfg or WorldConfig(size=_world_size(video), frames=max(8, min(16, len(video))))
    frames = detect_video(video)
    color_uses = Counter(g.color for g in groups)
    results = []
    for g in groups:
        by_color = color_uses[g.color] == 1

        def mine(d: Detection, g=g, by_color=by_color) -> bool:
            return d.color == g.color and (by_color or d.shape == g.shape)

        per_frame = [[d for d in dets if mine(d)] for dets in frames]
        counts = Counter(len(ds) for ds in per_frame)
        detected = counts.most_common(1)[0][0]
        areas = [d.area for ds in per_frame for d in ds]
        expect = _expected_area(g.shape, cfg)
        size_ok = bool(areas) and 0.45 <= float(np.median(areas)) / expect <= 2.0
        shapes = Counter(d.shape for ds in per_frame for d in ds)
        present = sum(1 for ds in per_frame if ds) * 2 > len(per_frame)
        attribute_ok = present and shapes.most_common(1)[0][0] == g.shape if shapes else False
        tracks = build_tracks(frames, side, key=mine)
        motions = [t.motion for t in tracks]
        motion_ok = bool(motions) and all(m == g.motion for m in motions)
        results.append(
            GroupScore(
                g.color,
                g.shape,
                g.count,
                g.motion,
                detected,
                detected == g.count,
                size_ok,
                bool(attribute_ok),
                dict(shapes),
                motions,
                motion_ok,
            )
        )
    named = set(color_uses)
    extras = sorted(sum(1 for d in dets if d.color not in named) for dets in frames)
    extra = int(extras[len(extras) // 2])
    # Objects the caption does not name break the count too: otherwise guidance could "fix" a
    # count by recolouring the extra objects (seen on the shapes model) instead of removing them.
    numeracy = extra == 0 and all(r.count_ok and r.size_ok for r in results)
    attribute = all(r.attribute_ok for r in results)
    binding = all(r.motion_ok for r in results)
    return VideoScore(
        groups=results,
        numeracy=numeracy,
        attribute=attribute,
        motion=float(np.mean([r.motion_ok for r in results])),
        action_binding=binding,
        all=numeracy and attribute and binding,
        extra_objects=extra,
    )


def summarize(scores: list[VideoScore]) -> dict[str, float]:
    """Rates in [0, 1] of each category over videos."""
    if not scores:
        raise StarVidError("no scores to summarize")
    return {c: float(np.mean([float(getattr(s, c)) for s in scores])) for c in CATEGORIES}


__all__ = [
    "CATEGORIES",
    "MOTIONS",
    "Detection",
    "GroupScore",
    "Track",
    "VideoScore",
    "build_tracks",
    "classify_motion",
    "classify_shape",
    "coverage_maps",
    "detect_frame",
    "detect_video",
    "score_video",
    "summarize",
]
