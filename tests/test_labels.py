"""One labelling rule for heat maps: the engine's, read by the Studio to draw a map's boxes."""

from __future__ import annotations

import numpy as np
import pytest

from starvid.backbones import load_backbone
from starvid.parsing import parse_prompt
from starvid.planning import heuristic_plan
from starvid.targets import build_targets, label_subjects
from starvid.ui.editor import new_state
from starvid.ui.inspect import LiveRun, heatmap_for, word_subjects

PROMPT = "two red circles moving left and a blue square jumping"


@pytest.fixture(scope="module")
def parsed():
    return parse_prompt(PROMPT)


@pytest.mark.parametrize(
    ("spatial_words", "syntax_words"), [("noun", "verb"), ("phrase", "verb"), ("noun", "phrase")]
)
def test_the_studio_labels_maps_as_the_engine_does(parsed, spatial_words, syntax_words):
    bb = load_backbone("shapes", device="cpu")
    plan = heuristic_plan(parsed, frames=8, seed=0)
    engine = build_targets(bb.tokenizer, parsed, plan, spatial_words, syntax_words)
    studio = word_subjects(parsed, spatial_words, syntax_words)
    assert studio == {label: info["subject"] for label, info in engine.label_subjects.items()}
    assert studio == label_subjects(parsed, spatial_words, syntax_words)
    assert ("left" in studio) == (syntax_words == "phrase")


def test_a_modifiers_heat_map_shows_its_subjects_boxes_in_phrase_mode(parsed):
    """In spatial_words="phrase" the adjectives have maps too ("red"): they belong to their
    subject, whose boxes are drawn over them."""
    plan = heuristic_plan(parsed, frames=8, seed=0)
    state = new_state(PROMPT, parsed, plan, (32, 32))
    live = LiveRun(word_subjects=word_subjects(parsed, "phrase"))
    live.store_maps("guided", 1, {"red": np.ones((8, 8, 8)), "blue": np.ones((8, 8, 8))})
    for word, noun in (("red", "circle"), ("blue", "square")):
        fig = heatmap_for(live, state, word, 0, None)
        want = [o for o in plan.objects if o.noun == noun]
        assert want and len(fig.layout.shapes) == len(want), word
