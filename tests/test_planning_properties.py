"""Property-based tests of make_plan over parses of random prompts (real spaCy, no mocks).

Whatever the words (random text, number forms from "a pair of" to a 23-digit count, direction and
placement phrases, relations), frames and seed: parsing and planning raise nothing but a
StarVidError, every plan validates and keeps the parse's subjects, counts and verbs, and each
example finishes within a time bound.
"""

from __future__ import annotations

import contextlib
import signal
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starvid.errors import StarVidError
from starvid.parsing import ParsedPrompt, parse_prompt
from starvid.plan import MAX_FRAMES, Plan, load_plan
from starvid.planning import MAX_INSTANCES, MAX_SEED, make_plan

NUMBERS = [
    "a", "an", "one", "two", "three", "five", "twelve", "twenty", "0", "1", "3", "12", "13",
    "40", "99999999999999999999999", "-2", "3.5", "1e9", "a pair of", "a couple of",
    "a group of", "several", "many", "no", "",
]  # fmt: skip
NOUNS = [
    "cat", "cats", "dog", "dogs", "bird", "birds", "mice", "people", "car", "cars", "horse",
    "hot air balloons", "frog", "leaf", "robot", "fish", "sheep", "geese", "kite", "ball",
]  # fmt: skip
VERBS = [
    "walking", "running", "jumping", "flying", "sleeping", "falling", "rising", "climbing",
    "dancing", "hopping", "swimming", "driving", "sitting", "chasing", "drifts", "is rolling",
    "",
]  # fmt: skip
PHRASES = [
    "to the left", "to the right", "leftward", "from left to right", "from right to left",
    "from the left side to the right side", "from the left edge of the frame to the right",
    "from the top left corner to the bottom right corner", "across the frame from left to right",
    "from the bottom to the top", "from the top to the bottom", "from the right",
    "from the top right corner to the centre", "across the field", "up", "down", "up and down",
    "upward", "into the sky", "toward the camera", "away", "on the left", "on the right",
    "at the top", "in the bottom right corner", "in the background", "in the foreground",
    "above them", "next to a tree", "behind two chairs", "in front of the house",
    "away from the dog", "to the left of the cat", "", "",
]  # fmt: skip
JOINERS = [" and ", ", ", " while ", " as ", "; ", " "]


@st.composite
def clauses(draw) -> str:
    """One subject's words: a number, a noun, a verb and a phrase (some may be empty)."""
    parts = [draw(st.sampled_from(NUMBERS)), draw(st.sampled_from(NOUNS))]
    parts += [draw(st.sampled_from(VERBS)), draw(st.sampled_from(PHRASES))]
    return " ".join(p for p in parts if p)


@st.composite
def prompts(draw) -> str:
    """Clauses joined like prompts are, sometimes with random text around or between them."""
    pieces = draw(st.lists(clauses(), min_size=1, max_size=4))
    out = pieces[0]
    for piece in pieces[1:]:
        out += draw(st.sampled_from(JOINERS)) + piece
    if draw(st.booleans()):
        noise = draw(st.text(max_size=30))
        out = draw(st.sampled_from([noise + " " + out, out + " " + noise, noise]))
    return out


def check_plan(plan: Plan, parsed: ParsedPrompt, frames: int) -> None:
    """The plan validates and keeps the parse's subjects, counts (capped) and verbs."""
    again = load_plan(plan.to_json())  # the contract's JSON round-trips through validation
    assert again.to_dict() == plan.to_dict()
    b = plan.boxes_array()
    assert b.shape == (len(plan.objects), frames, 4)
    assert (b >= 0).all() and (b <= 1).all()
    assert (b[..., 2] > b[..., 0]).all() and (b[..., 3] > b[..., 1]).all()
    assert 1 <= len(plan.objects) <= MAX_INSTANCES
    assert len({o.id for o in plan.objects}) == len(plan.objects)
    subjects = parsed.subjects
    for k, s in enumerate(subjects):
        mine = [o for o in plan.objects if o.subject == k]
        assert len(mine) <= max(1, s.count)
        assert all(o.noun == s.noun and o.verbs == s.verb_lemmas for o in mine)
    assert all(0 <= o.subject < len(subjects) for o in plan.objects)
    planned = {o.subject for o in plan.objects}
    assert planned == set(range(min(len(subjects), MAX_INSTANCES)))
    assert plan.prompt == parsed.prompt


@contextlib.contextmanager
def time_limit(seconds: float):
    """Interrupt the block after ``seconds``: hypothesis' deadline only judges finished calls,
    and a planner that loops for ever (the old count cap did) would never finish."""

    def stop(_signum, _frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module", autouse=True)
def _spacy_loaded():
    parse_prompt("a cat")  # load spaCy once, outside the timed examples


# Random on every run (no example database): a failure prints the falsifying example. About
# 0.15 s an example at worst (512 frames, 12 instances) on a 2-core machine: 2 s is the bound
# (10 s interrupts a hang).
@settings(
    max_examples=150,
    deadline=timedelta(seconds=2),
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    prompt=prompts(),
    frames=st.one_of(st.integers(0, 24), st.sampled_from([MAX_FRAMES, MAX_FRAMES + 1])),
    seed=st.one_of(st.integers(0, 10), st.integers(-(2**64), 2**64)),
)
def test_heuristic_make_plan_raises_only_starvid_errors(prompt, frames, seed):
    try:
        with time_limit(10):
            parsed = parse_prompt(prompt)
            plan = make_plan(parsed, frames=frames, seed=seed, planner="heuristic")
    except StarVidError as exc:
        assert str(exc) and "\n" not in str(exc)  # one line for the CLI and the UI
        return
    assert 1 <= frames <= MAX_FRAMES and 0 <= seed <= MAX_SEED
    check_plan(plan, parsed, frames)
    assert plan.planner == "heuristic"


@pytest.mark.slow
@settings(max_examples=6, deadline=timedelta(seconds=60), database=None)
@given(prompt=prompts(), frames=st.integers(1, 16), seed=st.integers(0, 3))
def test_llm_make_plan_raises_only_starvid_errors(prompt, frames, seed):
    try:
        parsed = parse_prompt(prompt)
    except StarVidError:
        return
    with time_limit(90):
        plan = make_plan(parsed, frames=frames, seed=seed, planner="llm")
    check_plan(plan, parsed, frames)
    assert plan.planner.startswith(("llm:", "heuristic (llm fallback"))
    assert np.isfinite(plan.boxes_array()).all()
