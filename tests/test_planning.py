"""Heuristic planner, make_plan dispatch and the ``plan`` CLI (real spaCy parses)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from starvid.boxes import box_iou
from starvid.cli import main
from starvid.errors import StarVidError
from starvid.parsing import ParsedPrompt, Subject, Word, parse_prompt
from starvid.plan import Plan, load_plan, validate_plan
from starvid.planning import (
    MAX_INSTANCES,
    MAX_SEED,
    SEPARATION_IOU,
    describe_motion,
    heuristic_plan,
    instance_ids,
    llm_plan,
    make_plan,
    plan_from_intents,
    read_intent,
)
from starvid.planning.intent import level_down

ROOT = Path(__file__).resolve().parents[1]

# varied prompts: counts 1-5 (and more), one to three subjects, placement, relations, motion
PROMPTS = [
    "a dog running to the left",
    "a car driving from left to right",
    "a horse galloping from right to left",
    "a bird flying",
    "a frog jumping",
    "a cat sleeping",
    "a man walking toward the camera",
    "a dog on the left and a cat on the right",
    "a bird sitting at the top and a dog sleeping at the bottom",
    "a bird flying above two dogs",
    "two dogs running across the road",
    "a cat running to the right while a dog runs to the left",
    "a kangaroo hopping to the right",
    "a man sitting next to two dogs",
    "three cats walking to the left and a dog jumping on the right",
    "five birds flying in the sky and two dogs running on the ground",
    "a dog running and two dogs sitting",
    "two cats and three dogs playing in a park",
    "four horses galloping across a field",
    "a red car and a blue truck driving on a highway",
    "two people dancing on a stage",
    "three ducks swimming in a pond and a frog jumping on a lily pad",
    "a cat chasing two mice",
    "two children playing with a ball while their dog sleeps",
    "five balloons floating in the sky",
    "two fish swimming to the right and a turtle swimming to the left",
    "a dog sitting on the left, a cat sleeping in the middle and a rabbit hopping on the right",
    "two penguins walking on the ice and a seal resting",
    "three boats sailing from left to right",
    "a butterfly flying over two flowers",
    "four cars parked in a row",
    "two horses running and a bird flying above them",
    "a man running away from two bulls",
    "a cat walking in front of three dogs",
    "a teddy bear hiding behind two chairs",
    "one robot and two drones flying in the background",
    "a snake slithering to the left in the foreground",
    "a group of three elephants walking toward the camera",
    "a pair of swans gliding across a lake",
    "six apples falling from a tree",
    "five cats sitting and four dogs jumping and three birds flying",
    "two monkeys climbing and two parrots sleeping",
]


def frame0_max_iou(plan: Plan) -> float:
    """Largest IoU between boxes of two different instances at frame 0."""
    b = plan.boxes_array()[:, 0]
    if len(b) < 2:
        return 0.0
    iou = box_iou(b, b)
    np.fill_diagonal(iou, 0.0)
    return float(iou.max())


def centres(plan: Plan, i: int = 0) -> np.ndarray:
    return plan.objects[i].center_path()


def areas(plan: Plan, i: int = 0) -> np.ndarray:
    b = np.asarray(plan.objects[i].boxes)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


@pytest.fixture(scope="module")
def plans() -> dict[str, tuple[ParsedPrompt, Plan]]:
    out = {}
    for p in PROMPTS:
        parsed = parse_prompt(p)
        out[p] = (parsed, heuristic_plan(parsed, frames=16))
    return out


# -- the layout over many prompts -------------------------------------------------------------


def test_prompt_list_is_varied():
    assert len(PROMPTS) >= 30
    counts = {s.count for p in PROMPTS for s in parse_prompt(p).subjects}
    assert {1, 2, 3, 4, 5} <= counts
    assert {1, 2, 3} <= {len(parse_prompt(p).subjects) for p in PROMPTS}


def test_frame0_boxes_of_different_instances_are_apart(plans):
    bad = {p: round(frame0_max_iou(plan), 3) for p, (_, plan) in plans.items()}
    bad = {p: v for p, v in bad.items() if v >= SEPARATION_IOU}
    separated = 1 - len(bad) / len(plans)
    print(f"frame-0 separated: {separated:.1%} of {len(plans)} prompts")
    assert not bad, f"overlapping instances at frame 0: {bad}"


def test_one_object_per_instance_with_subject_and_verbs(plans):
    for p, (parsed, plan) in plans.items():
        expected = sum(s.count for s in parsed.subjects)
        assert len(plan.objects) == min(expected, MAX_INSTANCES), p
        ids = [o.id for o in plan.objects]
        assert len(set(ids)) == len(ids), p
        for k, s in enumerate(parsed.subjects):
            mine = [o for o in plan.objects if o.subject == k]
            assert len(mine) == s.count, p
            assert all(o.noun == s.noun and o.verbs == s.verb_lemmas for o in mine), p


def test_boxes_inside_frame_in_every_frame(plans):
    for p, (_, plan) in plans.items():
        b = plan.boxes_array()
        assert b.shape == (len(plan.objects), 16, 4)
        assert (b >= 0).all() and (b <= 1).all(), p
        assert (b[..., 2] > b[..., 0]).all() and (b[..., 3] > b[..., 1]).all(), p
        assert plan.planner == "heuristic" and plan.prompt == p
        # round trip through the contract's JSON keeps the plan valid and equal
        again = load_plan(plan.to_json())
        np.testing.assert_allclose(again.boxes_array(), b)


def test_more_instances_get_smaller_boxes(plans):
    one = areas(plans["a cat sleeping"][1])[0]
    three = areas(plans["two cats and three dogs playing in a park"][1])[0]
    many = areas(plans["five cats sitting and four dogs jumping and three birds flying"][1])[0]
    assert one > three > many


def test_deterministic_for_prompt_and_seed():
    parsed = parse_prompt("three cats walking to the left and a dog jumping on the right")
    a = heuristic_plan(parsed, frames=16, seed=3)
    b = heuristic_plan(parsed, frames=16, seed=3)
    assert a.to_json() == b.to_json()
    others = [heuristic_plan(parsed, 16, seed) for seed in range(5)]
    for plan in others:  # other seeds: other layouts, still separated and moving the same way
        assert frame0_max_iou(plan) < SEPARATION_IOU
        assert [describe_motion(o) for o in plan.objects] == ["left"] * 3 + ["hop"]
    assert len({p.to_json() for p in others}) == 5


def test_three_cats_ids():
    plan = heuristic_plan(parse_prompt("three cats sleeping"))
    assert [o.id for o in plan.objects] == ["cat-1", "cat-2", "cat-3"]
    assert {o.subject for o in plan.objects} == {0}


def test_ids_stay_unique_when_a_noun_repeats():
    parsed = parse_prompt("a dog running and two dogs sitting")
    assert len(parsed.subjects) == 2
    plan = heuristic_plan(parsed)
    assert [(o.id, o.subject) for o in plan.objects] == [("dog-1", 0), ("dog-2", 1), ("dog-3", 1)]
    assert instance_ids(["hot air balloon", "cat"], [2, 1]) == [
        ["hot_air_balloon-1", "hot_air_balloon-2"],
        ["cat-1"],
    ]


def test_instances_capped_with_warning():
    plan = heuristic_plan(parse_prompt("twenty birds flying"))
    assert len(plan.objects) == MAX_INSTANCES
    assert any("12 of 20" in w for w in plan.warnings)
    assert frame0_max_iou(plan) < SEPARATION_IOU
    plan = heuristic_plan(parse_prompt("ten cats sitting and five dogs sitting"))
    per_subject = [sum(o.subject == k for o in plan.objects) for k in (0, 1)]
    assert sum(per_subject) == MAX_INSTANCES and min(per_subject) >= 4
    assert len(plan.warnings) == 1 and "cat" in plan.warnings[0]


def cut_one_at_a_time(counts: list[int], limit: int) -> list[int]:
    """The old cap: cut the largest count (the first of equals) by one until the sum fits."""
    counts = list(counts)
    while sum(counts) > limit:
        counts[int(np.argmax(counts))] -= 1
    return counts


def test_level_down_cuts_like_one_at_a_time():
    for n in range(1, 5):
        for counts in itertools.product(range(1, 9), repeat=n):
            assert level_down(list(counts), 12) == cut_one_at_a_time(list(counts), 12), counts
    assert level_down([1, 12, 7], 12) == [1, 5, 6]  # largest first; of equals, the first
    assert level_down([10**30, 3], 12) == [9, 3]


def test_cli_huge_count_is_capped_at_once():
    """A count with 23 digits is capped in one step (it used to loop 10**23 times)."""
    huge = "99999999999999999999999"
    r = run_cli("plan", f"{huge} cats", "--planner", "heuristic", "--frames", "4", timeout=30)
    assert r.returncode == 0, r.stderr
    ids = [line.split()[0] for line in r.stdout.splitlines() if line.startswith("cat-")]
    assert ids == [f"cat-{i}" for i in range(1, MAX_INSTANCES + 1)]
    assert f"warning: cat: planned {MAX_INSTANCES} of {huge} instances" in r.stdout


# -- motion --------------------------------------------------------------------------------------


def plan_of(prompt: str, frames: int = 16) -> Plan:
    return heuristic_plan(parse_prompt(prompt), frames=frames)


@pytest.mark.parametrize(
    "prompt, sign",
    [
        ("a dog running to the left", -1),
        ("a fox trotting towards the left", -1),
        ("a car driving from left to right", 1),
        ("a horse galloping from right to left", -1),
        ("a man walking to the right", 1),
        ("a bird flying to the right", 1),
        ("a truck driving right", 1),
    ],
)
def test_horizontal_direction(prompt, sign):
    for seed in (0, 1):
        c = heuristic_plan(parse_prompt(prompt), seed=seed).objects[0].center_path()
        assert sign * (c[-1, 0] - c[0, 0]) > 0.2
        assert np.all(sign * np.diff(c[:, 0]) >= 0)


def test_from_left_to_right_travels_far_and_across_too():
    assert np.ptp(centres(plan_of("a car driving from left to right"))[:, 0]) > 0.4
    c = centres(plan_of("two dogs running across the road"))
    assert abs(c[-1, 0] - c[0, 0]) > 0.4 and abs(c[-1, 1] - c[0, 1]) < 0.01


def test_rise_and_descent():
    for prompt in ("a bird flying", "a balloon rising", "a squirrel climbing up a tree"):
        c = centres(plan_of(prompt))
        assert c[-1, 1] < c[0, 1] - 0.15, prompt
        assert np.all(np.diff(c[:, 1]) <= 1e-9), prompt
    for prompt in ("a leaf falling", "a stone sinking", "a bird flying down"):
        c = centres(plan_of(prompt))
        assert c[-1, 1] > c[0, 1] + 0.15, prompt


def test_jumping_is_a_vertical_arc():
    c = centres(plan_of("a frog jumping", frames=33))
    y = c[:, 1]
    assert abs(y[-1] - y[0]) < 0.01 and abs(c[-1, 0] - c[0, 0]) < 0.01
    assert y.min() < y[0] - 0.05  # goes up (y decreases) and comes back
    assert describe_motion(plan_of("a frog jumping").objects[0]) == "hop"
    # "hopping" makes several arcs: count the returns to the ground
    y = centres(plan_of("a rabbit hopping", frames=64))[:, 1]
    ground = y >= y[0] - 1e-6
    assert int(np.sum(ground[1:] & ~ground[:-1])) >= 2


def test_still_verbs_do_not_move():
    for prompt in ("a cat sleeping", "a man sitting on a bench", "two dogs lying on the grass"):
        b = plan_of(prompt).boxes_array()
        assert np.ptp(b, axis=1).max() == 0.0, prompt


def test_toward_camera_grows_and_away_shrinks():
    a = areas(plan_of("a man walking toward the camera"))
    assert a[-1] > 1.5 * a[0] and np.all(np.diff(a) > 0)
    a = areas(plan_of("a car driving away"))
    assert a[-1] < 0.7 * a[0]


def test_walking_without_direction_moves_gently_toward_room():
    c = centres(plan_of("a man walking"))
    assert 0.05 < abs(c[-1, 0] - c[0, 0]) < 0.3 and abs(c[-1, 1] - c[0, 1]) < 1e-9
    # a walker that starts on the left side heads right, where the room is
    plan = plan_of("a dog walking on the left")
    c = centres(plan)
    assert c[0, 0] < 0.4 and c[-1, 0] > c[0, 0]


def test_each_subject_moves_its_own_way():
    plan = plan_of("a cat running to the right while a dog runs to the left")
    cat, dog = (o.center_path() for o in plan.objects)
    assert cat[-1, 0] > cat[0, 0] + 0.2 and dog[-1, 0] < dog[0, 0] - 0.2


def test_placement_words():
    plan = plan_of("a dog on the left and a cat on the right")
    assert centres(plan, 0)[0, 0] < 0.45 < 0.55 < centres(plan, 1)[0, 0]
    plan = plan_of("a bird sitting at the top and a dog sleeping at the bottom")
    assert centres(plan, 0)[0, 1] < 0.4 and centres(plan, 1)[0, 1] > 0.6
    plan = plan_of(
        "a dog sitting on the left, a cat sleeping in the middle and a rabbit hopping on the right"
    )
    xs = [centres(plan, i)[0, 0] for i in range(3)]
    assert xs == sorted(xs) and abs(xs[1] - 0.5) < 0.1
    big = areas(plan_of("a snake sleeping in the foreground"))[0]
    small = areas(plan_of("a snake sleeping in the background"))[0]
    assert big > 1.5 * small


def test_relations_to_other_subjects():
    plan = plan_of("a bird flying above two dogs")
    bird = np.asarray(plan.objects[0].boxes)
    dogs = np.asarray([o.boxes for o in plan.objects[1:]])
    assert bird[:, 3].max() <= dogs[:, :, 1].min() + 0.02  # above the dogs all along
    dogs_x = (dogs[..., 0].min(), dogs[..., 2].max())
    assert dogs_x[0] < centres(plan)[0, 0] < dogs_x[1]
    plan = plan_of("two dogs sleeping under a bird")  # "a bird" is scene, not a subject
    assert len(plan.objects) == 2
    plan = plan_of("a cat sitting next to two dogs")
    cat, d1, d2 = (np.asarray(o.boxes[0]) for o in plan.objects)
    dog_block = (min(d1[0], d2[0]), max(d1[2], d2[2]))
    assert cat[2] <= dog_block[0] + 0.01 or cat[0] >= dog_block[1] - 0.01
    assert abs((cat[1] + cat[3]) / 2 - (d1[1] + d1[3]) / 2) < 0.15
    plan = plan_of("a cat chasing two mice")
    cat = centres(plan, 0)
    mice_x = np.mean([centres(plan, i)[0, 0] for i in (1, 2)])
    assert np.sign(cat[-1, 0] - cat[0, 0]) == np.sign(mice_x - cat[0, 0])
    plan = plan_of("a dog approaching two cats")  # toward the cats, not the camera
    dog, cats_x = centres(plan, 0), np.mean([centres(plan, i)[0, 0] for i in (1, 2)])
    assert np.sign(dog[-1, 0] - dog[0, 0]) == np.sign(cats_x - dog[0, 0])
    assert areas(plan)[-1] == pytest.approx(areas(plan)[0], rel=0.01)
    plan = plan_of("a man running away from two bulls")
    man = centres(plan, 0)
    bulls_x = np.mean([centres(plan, i)[0, 0] for i in (1, 2)])
    assert np.sign(man[-1, 0] - man[0, 0]) == -np.sign(bulls_x - man[0, 0])


def build_parsed(prompt: str, subjects: list[tuple[str, str, int, list[str]]]) -> ParsedPrompt:
    """A ParsedPrompt built by hand: (head text, lemma, count, [verb text:lemma]) per subject.

    Each subject's clause runs from its head to the next subject's phrase, so the planner reads
    exactly the words given, independent of the parser's attachment decisions.
    """
    out, pos = [], 0
    heads = []
    for head_text, lemma, count, verbs in subjects:
        start = prompt.index(head_text, pos)
        heads.append((start, head_text, lemma, count, verbs))
        pos = start + len(head_text)
    for i, (start, head_text, lemma, count, verbs) in enumerate(heads):
        end = heads[i + 1][0] if i + 1 < len(heads) else len(prompt)
        words = []
        for v in verbs:
            text, vlemma = v.split(":")
            vs = prompt.index(text, start)
            words.append(Word(text, vlemma, vs, vs + len(text), 0))
        out.append(
            Subject(
                head=Word(head_text, lemma, start, start + len(head_text), 0),
                count=count,
                verbs=words,
                phrase=(start, start + len(head_text)),
                clause=(start, end),
            )
        )
    return ParsedPrompt(prompt=prompt, subjects=out, scene=[])


def test_hand_built_parse_reads_clause_words_only():
    parsed = build_parsed(
        "an eagle soaring upward and two rabbits running to the left",
        [("eagle", "eagle", 1, ["soaring:soar"]), ("rabbits", "rabbit", 2, ["running:run"])],
    )
    assert read_intent(parsed, 0).motion.label == "rise"
    assert read_intent(parsed, 1).motion.label == "left"
    plan = heuristic_plan(parsed)
    assert describe_motion(plan.objects[0]) == "rise"
    assert all(describe_motion(o) == "left" for o in plan.objects[1:])
    assert frame0_max_iou(plan) < SEPARATION_IOU


def test_hand_built_relation_left_of_and_pronoun():
    parsed = build_parsed(
        "a lamp to the left of two chairs",
        [("lamp", "lamp", 1, []), ("chairs", "chair", 2, [])],
    )
    intent = read_intent(parsed, 0)
    assert (intent.relation, intent.target) == ("left_of", 1)
    plan = heuristic_plan(parsed)
    lamp = plan.objects[0].boxes[0]
    assert lamp[2] <= min(o.boxes[0][0] for o in plan.objects[1:]) + 0.01
    parsed = build_parsed(
        "two cows grazing and a crow sitting above them",
        [("cows", "cow", 2, ["grazing:graze"]), ("crow", "crow", 1, ["sitting:sit"])],
    )
    assert (read_intent(parsed, 1).relation, read_intent(parsed, 1).target) == ("above", 0)
    plan = heuristic_plan(parsed)
    crow = plan.objects[2].boxes[0]
    assert crow[3] <= min(o.boxes[0][1] for o in plan.objects[:2]) + 0.02


def test_direction_words_are_not_placement_and_vice_versa():
    def label(prompt, head, lemma, verbs):
        return read_intent(build_parsed(prompt, [(head, lemma, 1, verbs)]), 0)

    it = label("a dog on the left running to the right", "dog", "dog", ["running:run"])
    assert it.x is not None and it.x < 0.5 and it.motion.dx > 0 and not it.motion.free_direction
    it = label("a dog walking leftward", "dog", "dog", ["walking:walk"])
    assert it.motion.dx < 0 and not it.motion.free_direction
    it = label("a cat sitting down", "cat", "cat", ["sitting:sit"])
    assert it.motion.label == "still"
    it = label("a girl walking down the street", "girl", "girl", ["walking:walk"])
    assert it.motion.dy == 0 and it.motion.dx and it.motion.free_direction
    it = label("a boy jumping up and down", "boy", "boy", ["jumping:jump"])
    assert it.motion.hops >= 1 and it.motion.dy == 0


# -- frames, keyframes, dispatch -------------------------------------------------------------


@pytest.mark.parametrize("frames", [1, 2, 5, 16, 64, 512])
def test_any_frame_count(frames):
    plan = plan_of("two cats walking to the right and a frog jumping", frames=frames)
    assert plan.frames == frames and all(len(o.boxes) == frames for o in plan.objects)
    assert frame0_max_iou(plan) < SEPARATION_IOU


@pytest.mark.parametrize("frames", [0, -1, 513, 2.5, True])
def test_bad_frames(frames):
    with pytest.raises(StarVidError, match="frames"):
        make_plan(parse_prompt("a cat sleeping"), frames=frames, planner="heuristic")


@pytest.mark.parametrize("seed", [-1, 2**63, 1.0, "3", None, True])
def test_bad_seeds(seed):
    parsed = parse_prompt("two cats sleeping")
    for plan in (make_plan, heuristic_plan, llm_plan):
        with pytest.raises(StarVidError, match="seed must be"):
            plan(parsed, seed=seed)


def test_largest_seed_plans():
    parsed = parse_prompt("two cats sleeping")
    assert heuristic_plan(parsed, seed=MAX_SEED).frames == 16


def test_keyframe_plan_resamples_like_heuristic_plans():
    plan = validate_plan(
        {
            "frames": 9,
            "objects": [
                {
                    "id": "cat-1",
                    "noun": "cat",
                    "subject": 0,
                    "keyframes": {"0": [0.1, 0.4, 0.3, 0.6], "8": [0.7, 0.4, 0.9, 0.6]},
                }
            ],
        }
    )
    assert describe_motion(plan.objects[0]) == "right"
    np.testing.assert_allclose(plan.objects[0].boxes[4], [0.4, 0.4, 0.6, 0.6])
    assert plan.resample(3).objects[0].boxes[1] == pytest.approx((0.4, 0.4, 0.6, 0.6))


def test_make_plan_heuristic_and_errors():
    plan = make_plan(parse_prompt("three cats sleeping"), frames=8, seed=1, planner="heuristic")
    assert plan.planner == "heuristic" and plan.prompt == "three cats sleeping"
    assert len(plan.objects) == 3 and plan.frames == 8
    parsed = parse_prompt("a dog running")
    assert make_plan(parsed, planner="heuristic").to_json() == heuristic_plan(parsed).to_json()
    with pytest.raises(StarVidError, match="planner"):
        make_plan(parse_prompt("a cat"), planner="magic")
    with pytest.raises(StarVidError, match="no subject"):
        make_plan(ParsedPrompt(prompt="the sky", subjects=[], scene=["sky"]), planner="heuristic")
    with pytest.raises(TypeError, match="parse_prompt first"):  # callers parse first
        make_plan("a cat sleeping", planner="heuristic")


def test_auto_falls_back_without_the_llm_runtime(monkeypatch):
    # None in sys.modules makes llama_cpp look not installed (find_spec returns None)
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    plan = make_plan(parse_prompt("two dogs running"), planner="auto")
    assert plan.planner == "heuristic" and len(plan.objects) == 2
    with pytest.raises(StarVidError, match="LLM planner needs llama-cpp-python"):
        make_plan(parse_prompt("two dogs running"), planner="llm")


def test_auto_and_llm_with_a_missing_model(tmp_path):
    missing = str(tmp_path / "missing.gguf")
    # auto falls back quietly to the heuristic planner; llm says exactly what is wrong
    assert (
        make_plan(parse_prompt("a cat sleeping"), planner="auto", model=missing).planner
        == "heuristic"
    )
    with pytest.raises(StarVidError, match="not found"):
        make_plan(parse_prompt("a cat sleeping"), planner="llm", model=missing)


# -- CLI -----------------------------------------------------------------------------------------

CONTRACT_OBJECT_KEYS = {"id", "noun", "subject", "verbs", "boxes"}


def check_contract(data: dict, frames: int, n_objects: int) -> None:
    assert {"version", "frames", "objects", "planner"} <= set(data)
    assert set(data) <= {"version", "frames", "objects", "planner", "prompt", "warnings"}
    assert data["version"] == 1 and data["frames"] == frames and len(data["objects"]) == n_objects
    for obj in data["objects"]:
        assert set(obj) == CONTRACT_OBJECT_KEYS
        assert len(obj["boxes"]) == frames and all(len(b) == 4 for b in obj["boxes"])
    validate_plan(data)


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "starvid", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


def test_cli_plan_json_subprocess():
    prompt = "three cats walking to the left and a dog jumping on the right"
    r = run_cli("plan", prompt, "--frames", "8", "--json", "--planner", "heuristic", "--seed", "1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    check_contract(data, 8, 4)
    assert [o["id"] for o in data["objects"]] == ["cat-1", "cat-2", "cat-3", "dog-1"]
    assert data["planner"] == "heuristic"


def test_cli_negative_seed_subprocess():
    """It used to end in a numpy traceback (heuristic) or a random seed (LLM planner)."""
    for planner in ("heuristic", "auto"):
        r = run_cli("plan", "two cats", "--seed", "-1", "--planner", planner)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr == "error: seed must be between 0 and 9223372036854775807, got -1\n"


def test_cli_bad_frames_subprocess():
    r = run_cli("plan", "a cat sleeping", "--frames", "0", "--json", "--planner", "heuristic")
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "frames" in r.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--frames", "513"], "frames"),
        (["--frames", "abc"], "frames"),
        (["--planner", "magic"], "planner"),
        (["--seed", "-1"], "seed must be between 0 and"),
        (["--seed", str(2**63)], "seed must be between 0 and"),
        (["--seed", "2.5"], "--seed"),
    ],
)
def test_cli_bad_input_in_process(capsys, args, needle):
    assert main(["plan", "a cat sleeping", "--json", *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and needle in err


def test_cli_empty_prompt(capsys):
    assert main(["plan", "", "--json", "--planner", "heuristic"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1


def test_cli_plan_in_process(capsys):
    args = ["plan", "two dogs running across the road", "--frames", "5", "--planner", "heuristic"]
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    check_contract(data, 5, 2)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("planner: heuristic, 5 frames") and "dog-2" in out


def test_more_subjects_than_the_cap():
    prompt = ", ".join(
        f"a {n} sleeping" for n in "cat dog cow pig hen fox owl bat rat ant bee elk yak".split()
    )
    parsed = parse_prompt(prompt)
    assert len(parsed.subjects) == 13
    plan = heuristic_plan(parsed)
    assert len(plan.objects) == MAX_INSTANCES and plan.objects[-1].subject == 11
    assert any("yak" in w for w in plan.warnings)
    assert frame0_max_iou(plan) < SEPARATION_IOU


def test_layout_relations_follow_subject_indices_when_a_subject_is_left_out():
    parsed = parse_prompt("a bird flying above two dogs")
    intents = [read_intent(parsed, 0), read_intent(parsed, 1)]
    assert (intents[0].relation, intents[0].target) == ("above", 1)
    # the target listed first: relations still find it by subject index
    plan = plan_from_intents(intents[::-1], frames=8)
    bird = np.asarray(plan.objects[2].boxes)
    assert plan.objects[2].id == "bird-1"
    assert bird[:, 3].max() <= min(o.boxes[0][1] for o in plan.objects[:2]) + 0.02
    # the target missing: the relation is dropped, the plan still valid
    plan = plan_from_intents(intents[:1], frames=8)
    assert len(plan.objects) == 1


def generated_prompts(n: int, seed: int = 7) -> list[str]:
    """Random combinations of counts, nouns, verbs and direction or placement words."""
    rng = np.random.default_rng(seed)
    nums = ["a", "two", "three", "four", "five"]
    nouns = ["cat", "dog", "bird", "horse", "frog", "car", "balloon", "duck"]
    verbs = ["walking", "running", "jumping", "flying", "sleeping", "dancing", "falling"]
    words = ["", "", "to the left", "to the right", "across the field", "on the left",
             "on the right", "at the top", "in the background", "toward the camera",
             "from left to right", "above two dogs"]  # fmt: skip
    out = []
    for _ in range(n):
        parts = []
        for _ in range(int(rng.choice([1, 2, 2, 3]))):
            num, noun = str(rng.choice(nums)), str(rng.choice(nouns))
            noun = noun if num == "a" else noun + "s"
            parts.append(f"{num} {noun} {rng.choice(verbs)} {rng.choice(words)}".strip())
        out.append(" and ".join(parts[:2]) + (f", {parts[2]}" if len(parts) > 2 else ""))
    return out


def test_generated_prompts_separated_and_inside():
    prompts = generated_prompts(60)
    for i, prompt in enumerate(prompts):
        plan = heuristic_plan(parse_prompt(prompt), frames=12, seed=i % 3)
        assert frame0_max_iou(plan) < SEPARATION_IOU, prompt
        b = plan.boxes_array()
        assert (b >= 0).all() and (b <= 1).all(), prompt


def test_named_place_wins_over_a_free_subjects_path():
    # the walking cat is placed after the dog, whose words pin it to the left
    plan = heuristic_plan(
        parse_prompt("a cat walking to the right and a dog jumping on the left"), frames=8
    )
    cat, dog = plan.objects
    dog_x = (dog.boxes[0][0] + dog.boxes[0][2]) / 2
    assert dog_x < 0.45
    assert cat.center_path()[-1, 0] > cat.center_path()[0, 0]


# -- source-to-destination phrasings -----------------------------------------------------------

# prompt, the side the path starts on per axis (x: -1 left, +1 right; y: -1 top, +1 bottom; None:
# not said), and the way it travels per axis (None: not checked)
ROUTE_CASES = [
    ("a car driving from the left side to the right side", (-1, None), (1, 0)),
    ("a dog running from the left edge of the frame to the right", (-1, None), (1, 0)),
    ("a horse galloping across the frame from left to right", (-1, None), (1, 0)),
    ("a fox running from the far left all the way to the right", (-1, None), (1, 0)),
    ("a boy walking left to right", (-1, None), (1, 0)),
    ("a bus driving from right to left", (1, None), (-1, 0)),
    ("a cat walking from the right side of the screen to the left side", (1, None), (-1, 0)),
    ("a deer running from the right-hand side to the left", (1, None), (-1, 0)),
    ("a balloon floating from the bottom to the top", (None, 1), (0, -1)),
    ("a rocket rising from the bottom of the frame to the top", (None, 1), (0, -1)),
    ("a bubble drifting bottom to top", (None, 1), (0, -1)),
    ("a leaf falling from the top to the bottom", (None, -1), (0, 1)),
    ("a man walking from the top of the screen to the bottom", (None, -1), (0, 1)),
    ("a ball rolling from the top left corner to the bottom right corner", (-1, -1), (1, 1)),
    ("a bird flying from the bottom right corner to the top left corner", (1, 1), (-1, -1)),
    ("three birds flying from the lower left to the upper right", (-1, 1), (1, -1)),
    ("a kite drifting from the top-right to the bottom-left", (1, -1), (-1, 1)),
    ("a car coming from the left", (-1, None), (1, 0)),
    ("a fish swimming in from the right", (1, None), (-1, None)),
    ("a stone rolling from the top right corner to the top left corner", (1, -1), (-1, 0)),
]


@pytest.mark.parametrize("prompt, start, way", ROUTE_CASES)
def test_routes_start_on_the_named_side_and_travel_that_way(prompt, start, way):
    parsed = parse_prompt(prompt)
    for seed in (0, 1):
        plan = heuristic_plan(parsed, seed=seed)
        paths = np.array([o.center_path() for o in plan.objects if o.subject == 0])
        first, travel = paths[:, 0].mean(0), paths[:, -1].mean(0) - paths[:, 0].mean(0)
        for axis in (0, 1):
            if start[axis] is not None:  # the named half, clear of the middle
                assert start[axis] * (first[axis] - 0.5) > 0.05, (axis, first)
            if way[axis]:
                assert way[axis] * travel[axis] > 0.2, (axis, travel)
                steps = way[axis] * np.diff(paths[..., axis], axis=1)
                assert (steps >= -1e-9).all()  # all the way, never back
            elif way[axis] == 0:
                assert abs(travel[axis]) < 0.02, (axis, travel)


def test_route_words_are_read_as_a_route():
    it = read_intent(parse_prompt("a ball rolling from the top left corner to the bottom right"), 0)
    assert (it.route.start, it.route.end) == ((-1, -1), (1, 1))
    assert it.motion.stretch and it.motion.dx > 0 and it.motion.dy > 0
    it = read_intent(parse_prompt("a boat sailing from the left to the centre"), 0)
    assert (it.route.step(0), it.route.crosses(0), it.x) == (1, False, 0.25)
    assert not it.motion.stretch and 0.2 < it.motion.dx < 0.5
    # "from" without a place is no route: "falling from a tree" keeps the verb's fall
    it = read_intent(parse_prompt("six apples falling from a tree"), 0)
    assert it.route is None and it.motion.label == "descend"


def test_the_cli_offers_exactly_the_planners():
    from starvid.cli import PLANNER_CHOICES
    from starvid.planning import PLANNERS

    assert tuple(PLANNER_CHOICES) == tuple(PLANNERS)
