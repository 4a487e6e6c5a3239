"""Prompt suites: seeded prompts from the project's own templates, each with its facts.

Suites follow the tasks of two benchmarks, with templates and object lists written here (no
benchmark prompt is copied): LLM-grounded Video Diffusion's numeracy, attribution, visibility,
dynamics and sequential tasks (``lvd-*``), T2V-CompBench's generative numeracy, spatial
relationships, motion binding and action binding (``compbench-*``), and the held-out captions of
the shapes world (``shapes``). ``lvd`` and ``compbench`` interleave their task suites.

Held out by seed: every prompt belongs to one of ``FOLDS`` folds (a hash of its text), and seed
``s`` draws only from fold ``s``, so different seeds never share a prompt, whatever `n`. A
suite's prompts for one seed are a deterministic stream: ``make_suite(name, 10, s)`` is the
first ten of ``make_suite(name, 100, s)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from starvid.errors import StarVidError
from starvid.evaluation.facts import Facts, ObjectFact, RelationFact, SuiteItem, article
from starvid.shapes.world import (
    MOTION_VERBS,
    Group,
    WorldConfig,
    caption_of,
    sample_eval_groups,
)

FOLDS = 5
DRAWS_PER_ITEM = 400  # rejection draws allowed per asked item before a suite counts as spent

ANIMALS = {
    "dog": "dogs", "cat": "cats", "horse": "horses", "cow": "cows", "duck": "ducks",
    "rabbit": "rabbits", "bear": "bears", "elephant": "elephants", "zebra": "zebras",
    "giraffe": "giraffes", "monkey": "monkeys", "bird": "birds",
}  # fmt: skip
VEHICLES = {
    "car": "cars", "bus": "buses", "truck": "trucks", "bicycle": "bicycles",
    "motorcycle": "motorcycles", "boat": "boats",
}  # fmt: skip
THINGS = {
    "ball": "balls", "balloon": "balloons", "kite": "kites", "umbrella": "umbrellas",
    "chair": "chairs", "bottle": "bottles", "cup": "cups", "backpack": "backpacks",
    "suitcase": "suitcases", "apple": "apples", "vase": "vases", "clock": "clocks",
}  # fmt: skip
PLURALS = {**ANIMALS, **VEHICLES, **THINGS}
COLORABLE = (*VEHICLES, *(t for t in THINGS if t != "apple"))
FLYERS = ("bird", "balloon", "kite")  # may also travel up and down
MOVERS = (*(a for a in ANIMALS if a != "bird"), *VEHICLES, "ball", *FLYERS)
COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
AGENT_ACTIONS = {
    "man": ("run", "jump", "sit", "walk", "dance", "wave", "read", "sing"),
    "woman": ("run", "jump", "sit", "walk", "dance", "wave", "read", "sing"),
    "child": ("run", "jump", "sit", "walk", "dance", "wave", "read", "sing"),
    "dog": ("run", "jump", "sit", "walk", "sleep", "eat", "bark", "swim"),
    "cat": ("run", "jump", "sit", "walk", "sleep", "eat"),
    "horse": ("run", "jump", "walk", "eat", "sleep"),
    "monkey": ("run", "jump", "sit", "eat", "climb", "sleep"),
    "bear": ("run", "walk", "sit", "eat", "sleep", "swim", "climb"),
    "rabbit": ("run", "jump", "sit", "eat", "sleep"),
    "duck": ("walk", "swim", "sleep", "eat"),
}
ING = {
    "run": "running", "jump": "jumping", "sit": "sitting", "walk": "walking",
    "dance": "dancing", "wave": "waving", "read": "reading", "sing": "singing",
    "sleep": "sleeping", "eat": "eating", "bark": "barking", "swim": "swimming",
    "climb": "climbing",
}  # fmt: skip
COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
SCENES = (
    "in a park",
    "on a city street",
    "on a beach",
    "in a field",
    "in a living room",
    "in the snow",
    "at sunset",
    "on a country road",
    "in a garden",
    "by a lake",
    "in a parking lot",
    "on a sports field",
)
TOP_DOWN_SCENES = (
    "over a grass lawn",
    "over a paved courtyard",
    "over a sandy beach",
    "over a parking lot",
    "over a wooden floor",
    "over a snowy field",
    "over a football pitch",
    "over a dirt road",
)
OPENINGS = ("A video of", "A realistic video of", "Footage of")
SHOT = ("A video shot", "A realistic clip filmed", "Footage recorded")
RELATION_WORDS = {
    "left of": ("to the left of", "on the left side of"),
    "right of": ("to the right of", "on the right side of"),
    "above": ("above", "over"),
    "below": ("below", "under"),
}
# Corner-to-corner paths: each move changes one side (left/right or upper/lower), never back.
QUADRANT_NEIGHBOURS = {
    "upper left": ("upper right", "lower left"),
    "upper right": ("upper left", "lower right"),
    "lower left": ("lower right", "upper left"),
    "lower right": ("lower left", "upper right"),
}


def counted(count: int, noun: str) -> str:
    """ "three dogs", "one dog"."""
    return f"{COUNT_WORDS[count]} {noun if count == 1 else PLURALS[noun]}"


def _pick(rng: np.random.Generator, options, k: int | None = None):
    """One option (or `k` distinct ones) of a sequence, as plain Python values."""
    if k is None:
        return options[int(rng.integers(len(options)))]
    return [options[int(i)] for i in rng.choice(len(options), size=k, replace=False)]


# -- one draw per task: (prompt, facts) ----------------------------------------------------------

Draw = Callable[[np.random.Generator], tuple[str, Facts]]


def _lvd_numeracy(rng: np.random.Generator) -> tuple[str, Facts]:
    noun, count, scene = _pick(rng, list(PLURALS)), int(rng.integers(1, 5)), _pick(rng, SCENES)
    prompt = f"{_pick(rng, OPENINGS)} {counted(count, noun)} {scene}"
    return prompt, Facts(objects=[ObjectFact(noun=noun, count=count)], scene=scene)


def _lvd_attribution(rng: np.random.Generator) -> tuple[str, Facts]:
    (n1, n2), (c1, c2), scene = _pick(rng, COLORABLE, 2), _pick(rng, COLORS, 2), _pick(rng, SCENES)
    prompt = f"{_pick(rng, OPENINGS)} {article(c1)} {c1} {n1} and {article(c2)} {c2} {n2} {scene}"
    objects = [ObjectFact(noun=n1, color=c1), ObjectFact(noun=n2, color=c2)]
    return prompt, Facts(objects=objects, scene=scene)


def _lvd_visibility(rng: np.random.Generator) -> tuple[str, Facts]:
    noun, scene, appears = _pick(rng, MOVERS), _pick(rng, SCENES), bool(rng.integers(2))
    if appears:
        phrases = (
            "appears only in the second half of the video",
            "comes into view halfway through",
        )
    else:
        phrases = (
            "is visible only in the first half of the video",
            "leaves the scene halfway through",
        )
    prompt = f"{_pick(rng, SHOT)} {scene} in which {article(noun)} {noun} {_pick(rng, phrases)}"
    obj = ObjectFact(noun=noun, visibility="appears" if appears else "disappears")
    return prompt, Facts(objects=[obj], scene=scene)


def _lvd_dynamics(rng: np.random.Generator) -> tuple[str, Facts]:
    scene, opening = _pick(rng, SCENES), _pick(rng, OPENINGS)
    if rng.integers(2):  # one object crossing the frame
        noun = _pick(rng, MOVERS)
        ways = [("left", "right", "right"), ("right", "left", "left")]
        if noun in FLYERS:
            ways += [("top", "bottom", "down"), ("bottom", "top", "up")]
        start, end, motion = _pick(rng, ways)
        prompt = f"{opening} {article(noun)} {noun} moving from the {start} to the {end} {scene}"
        return prompt, Facts(objects=[ObjectFact(noun=noun, motion=motion)], scene=scene)
    n1, n2 = _pick(rng, MOVERS, 2)
    start, end = _pick(rng, [("left", "right"), ("right", "left")])
    prompt = (
        f"{opening} {article(n1)} {n1} moving from the {start} of {article(n2)} {n2} "
        f"to its {end} {scene}"
    )
    relations = [
        RelationFact(subject=0, relation=f"{start} of", object=1, when="first"),
        RelationFact(subject=0, relation=f"{end} of", object=1, when="last"),
    ]
    objects = [ObjectFact(noun=n1), ObjectFact(noun=n2)]
    return prompt, Facts(objects=objects, relations=relations, scene=scene)


def _lvd_sequential(rng: np.random.Generator) -> tuple[str, Facts]:
    noun, scene = _pick(rng, MOVERS), _pick(rng, TOP_DOWN_SCENES)
    first = _pick(rng, list(QUADRANT_NEIGHBOURS))
    second = _pick(rng, QUADRANT_NEIGHBOURS[first])
    third = next(r for r in QUADRANT_NEIGHBOURS[second] if r != first)
    if rng.integers(2):
        moves = (
            f"starts in the {first} of the frame, then moves to the {second}, "
            f"and finally to the {third}"
        )
    else:
        moves = (
            f"begins at the {first} corner, travels to the {second} corner, "
            f"then to the {third} corner"
        )
    prompt = f"A top-down video {scene} in which {article(noun)} {noun} {moves}"
    obj = ObjectFact(noun=noun, path=[first, second, third])
    return prompt, Facts(objects=[obj], scene=scene)


def _compbench_numeracy(rng: np.random.Generator) -> tuple[str, Facts]:
    scene = _pick(rng, SCENES)
    if rng.integers(2):
        noun, count = _pick(rng, list(PLURALS)), int(rng.integers(1, 7))
        objects = [ObjectFact(noun=noun, count=count)]
        words = counted(count, noun)
    else:
        nouns, counts = _pick(rng, list(PLURALS), 2), [int(c) for c in rng.integers(1, 5, size=2)]
        objects = [ObjectFact(noun=n, count=c) for n, c in zip(nouns, counts, strict=True)]
        words = " and ".join(counted(c, n) for n, c in zip(nouns, counts, strict=True))
    return f"{words} {scene}", Facts(objects=objects, scene=scene)


def _compbench_spatial(rng: np.random.Generator) -> tuple[str, Facts]:
    (n1, n2), scene = _pick(rng, list(PLURALS), 2), _pick(rng, SCENES)
    relation = _pick(rng, list(RELATION_WORDS))
    words = _pick(rng, RELATION_WORDS[relation])
    prompt = f"{article(n1)} {n1} {words} {article(n2)} {n2} {scene}"
    facts = Facts(
        objects=[ObjectFact(noun=n1), ObjectFact(noun=n2)],
        relations=[RelationFact(subject=0, relation=relation, object=1)],
        scene=scene,
    )
    return prompt, facts


def _compbench_motion(rng: np.random.Generator) -> tuple[str, Facts]:
    (n1, n2), scene = _pick(rng, MOVERS, 2), _pick(rng, SCENES)
    ways = [["left", "right"] + (["up", "down"] if n in FLYERS else []) for n in (n1, n2)]
    d1 = _pick(rng, ways[0])
    d2 = _pick(rng, [d for d in ways[1] if d != d1])
    words = {"left": "to the left", "right": "to the right", "up": "upwards", "down": "downwards"}
    verb = _pick(rng, ("moving", "heading", "going"))
    prompt = (
        f"{article(n1)} {n1} {verb} {words[d1]} and {article(n2)} {n2} {verb} {words[d2]} {scene}"
    )
    objects = [ObjectFact(noun=n1, motion=d1), ObjectFact(noun=n2, motion=d2)]
    return prompt, Facts(objects=objects, scene=scene)


def _compbench_action(rng: np.random.Generator) -> tuple[str, Facts]:
    (n1, n2), scene = _pick(rng, list(AGENT_ACTIONS), 2), _pick(rng, SCENES)
    v1 = _pick(rng, AGENT_ACTIONS[n1])
    v2 = _pick(rng, [v for v in AGENT_ACTIONS[n2] if v != v1])
    prompt = f"{article(n1)} {n1} {ING[v1]} and {article(n2)} {n2} {ING[v2]} {scene}"
    objects = [ObjectFact(noun=n1, action=v1), ObjectFact(noun=n2, action=v2)]
    return prompt, Facts(objects=objects, scene=scene)


@dataclass(frozen=True)
class Suite:
    """A named suite: one task's template draw, or an interleaving of other suites (`parts`)."""

    name: str
    description: str
    task: str | None = None
    draw: Draw | None = None
    parts: tuple[str, ...] = ()


_TASK_SUITES = (
    Suite("lvd-numeracy", "one to four objects of one kind", "numeracy", _lvd_numeracy),
    Suite("lvd-attribution", "two objects of named colours", "attribution", _lvd_attribution),
    Suite(
        "lvd-visibility", "an object appearing or leaving halfway", "visibility", _lvd_visibility
    ),
    Suite("lvd-dynamics", "an object crossing the frame or another", "dynamics", _lvd_dynamics),
    Suite("lvd-sequential", "an object visiting three corners", "sequential", _lvd_sequential),
    Suite(
        "compbench-numeracy",
        "counts of one or two kinds",
        "generative_numeracy",
        _compbench_numeracy,
    ),
    Suite(
        "compbench-spatial",
        "two objects in a relation",
        "spatial_relationships",
        _compbench_spatial,
    ),
    Suite(
        "compbench-motion", "two objects moving their own ways", "motion_binding", _compbench_motion
    ),
    Suite("compbench-action", "two subjects, own actions", "action_binding", _compbench_action),
    Suite("shapes", "held-out two-subject captions of the shapes world", "shapes"),
)
SUITES: dict[str, Suite] = {s.name: s for s in _TASK_SUITES}
SUITES["lvd"] = Suite(
    "lvd",
    "the five LVD task suites, interleaved",
    parts=tuple(name for name in SUITES if name.startswith("lvd-")),
)
SUITES["compbench"] = Suite(
    "compbench",
    "the four T2V-CompBench-style suites, interleaved",
    parts=tuple(name for name in SUITES if name.startswith("compbench-")),
)


def fold_of(prompt: str) -> int:
    """The held-out fold of a prompt (0 to FOLDS - 1), from a hash of its text."""
    digest = hashlib.sha256(f"fold:{prompt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % FOLDS


def item_id(suite: str, prompt: str) -> str:
    """A stable id: the suite and a hash of the prompt."""
    return f"{suite}-{hashlib.sha256(prompt.encode()).hexdigest()[:10]}"


def make_suite(name: str, n: int, seed: int = 0) -> list[SuiteItem]:
    """`n` prompts of suite `name` with their facts, from held-out fold `seed` (0 to FOLDS - 1).

    Deterministic in (name, n, seed); a smaller `n` gives a prefix of a larger one. Raises
    StarVidError for an unknown suite or seed, or when the fold holds fewer than `n` prompts.
    """
    suite = SUITES.get(name)
    if suite is None:
        raise StarVidError(f"unknown suite {name!r}: use one of {', '.join(SUITES)}")
    if not 0 <= seed < FOLDS:
        raise StarVidError(f"suites have {FOLDS} held-out folds: seed must be 0 to {FOLDS - 1}")
    if n < 1:
        raise StarVidError(f"a suite needs at least one prompt, asked for {n}")
    if suite.parts:
        return _interleave(suite, n, seed)
    if suite.task == "shapes":
        return _shapes_items(n, seed)
    return _drawn_items(suite, n, seed)


def _interleave(suite: Suite, n: int, seed: int) -> list[SuiteItem]:
    k = len(suite.parts)
    parts = [
        make_suite(p, n // k + (i < n % k), seed) if i < n else []
        for i, p in enumerate(suite.parts)
    ]
    return [part[j] for j in range(max(map(len, parts))) for part in parts if j < len(part)]


def _drawn_items(suite: Suite, n: int, seed: int) -> list[SuiteItem]:
    rng = np.random.default_rng(
        [seed, int(hashlib.sha256(suite.name.encode()).hexdigest()[:8], 16)]
    )
    items: list[SuiteItem] = []
    seen: set[str] = set()
    for _ in range(n * DRAWS_PER_ITEM):
        prompt, facts = suite.draw(rng)
        if prompt in seen or fold_of(prompt) != seed:
            continue
        seen.add(prompt)
        items.append(
            SuiteItem(
                id=item_id(suite.name, prompt),
                suite=suite.name,
                task=suite.task,
                prompt=prompt,
                facts=facts,
            )
        )
        if len(items) == n:
            return items
    raise StarVidError(
        f"suite {suite.name!r} gave only {len(items)} distinct prompts for seed {seed} "
        f"(asked for {n}): ask for fewer"
    )


def _shapes_items(n: int, seed: int) -> list[SuiteItem]:
    """The shapes world's held-out captions (``sample_eval_groups``) whose fold is `seed`."""
    groups_list = sample_eval_groups(
        n, seed=seed, cfg=WorldConfig(), accept=lambda g: fold_of(caption_of(g)) == seed
    )
    return [shapes_item(groups) for groups in groups_list]


def shapes_item(groups: list[Group], suite: str = "shapes") -> SuiteItem:
    """The suite item of a shapes-world caption: its groups as facts (task ``shapes``)."""
    prompt = caption_of(groups)
    objects = [
        ObjectFact(
            noun=g.shape,
            count=g.count,
            color=g.color,
            motion=g.motion,
            action=MOTION_VERBS[g.motion],
        )
        for g in groups
    ]
    return SuiteItem(
        id=item_id(suite, prompt),
        suite=suite,
        task="shapes",
        prompt=prompt,
        facts=Facts(objects=objects),
    )


def shapes_groups(item: SuiteItem) -> list[Group]:
    """The shapes-world groups of a ``shapes`` item, for ``starvid.shapes.score.score_video``."""
    if item.task != "shapes":
        raise StarVidError(f"item {item.id} is a {item.task!r} item, not a shapes-world caption")
    return [Group(o.color, o.noun, o.count, o.motion) for o in item.facts.objects]
