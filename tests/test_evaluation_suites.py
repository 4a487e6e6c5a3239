"""Prompt suites: deterministic, held out by seed, facts that match the prompt, JSONL round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from starvid.errors import StarVidError
from starvid.evaluation import suites
from starvid.evaluation.facts import Facts, ObjectFact, SuiteItem, read_items, write_items
from starvid.evaluation.suites import FOLDS, SUITES, fold_of, make_suite, shapes_groups
from starvid.shapes.world import caption_of, is_held_out, sample_eval_groups

TEMPLATE_SUITES = [name for name, s in SUITES.items() if s.draw is not None]


@pytest.mark.parametrize("name", TEMPLATE_SUITES)
def test_suite_is_deterministic_prefix_stable_and_held_out_by_seed(name):
    a = make_suite(name, 40, seed=0)
    assert [i.model_dump() for i in a] == [i.model_dump() for i in make_suite(name, 40, seed=0)]
    assert [i.id for i in make_suite(name, 15, seed=0)] == [i.id for i in a[:15]]
    prompts = [set(i.prompt for i in make_suite(name, 40, seed=s)) for s in range(FOLDS)]
    assert all(len(p) == 40 for p in prompts)  # distinct prompts within a seed
    for s in range(FOLDS):
        for t in range(s + 1, FOLDS):
            assert not prompts[s] & prompts[t], (name, s, t)
        assert {fold_of(p) for p in prompts[s]} == {s}
    assert {i.task for i in a} == {SUITES[name].task} and {i.suite for i in a} == {name}
    assert len({i.id for i in a}) == 40


def test_seeds_outside_the_folds_and_unknown_suites_are_refused():
    with pytest.raises(StarVidError, match="seed must be 0 to 4"):
        make_suite("lvd-numeracy", 3, seed=FOLDS)
    with pytest.raises(StarVidError, match="unknown suite 'lvd-count'"):
        make_suite("lvd-count", 3)
    with pytest.raises(StarVidError, match="at least one prompt"):
        make_suite("lvd", 0)


def test_a_spent_fold_says_how_many_prompts_it_holds():
    # A template with two prompts: a seed's fold holds at most both.
    def draw(rng):
        noun = ["dog", "cat"][int(rng.integers(2))]
        return f"one {noun}", Facts(objects=[ObjectFact(noun=noun)])

    tiny = suites.Suite("tiny", "two prompts", "numeracy", draw)
    held = sum(fold_of(f"one {n}") == 0 for n in ("dog", "cat"))
    with pytest.raises(StarVidError, match=f"only {held} distinct prompts for seed 0"):
        suites._drawn_items(tiny, 3, 0)


def _words(prompt: str) -> set[str]:
    return set(prompt.lower().replace(",", " ").split())


def test_facts_say_what_the_prompts_say():
    for item in make_suite("lvd", 60, seed=2) + make_suite("compbench", 60, seed=2):
        words = _words(item.prompt)
        for obj in item.facts.objects:
            assert obj.noun in words or suites.PLURALS[obj.noun] in words, item.prompt
            if obj.color:
                assert f"{obj.color} {obj.noun}" in item.prompt
            if obj.count > 1:
                assert f"{suites.COUNT_WORDS[obj.count]} {suites.PLURALS[obj.noun]}" in item.prompt
            if obj.action:
                assert f"{obj.noun} {suites.ING[obj.action]}" in item.prompt
            for region in obj.path:
                assert region in item.prompt
        if item.facts.scene:
            assert item.prompt.endswith(item.facts.scene) or item.facts.scene in item.prompt


def test_facts_of_chosen_prompts_by_value():
    by_task = {}
    for item in make_suite("lvd", 100, seed=0) + make_suite("compbench", 100, seed=0):
        by_task.setdefault(item.task, []).append(item)
    assert set(by_task) == {
        "numeracy", "attribution", "visibility", "dynamics", "sequential",
        "generative_numeracy", "spatial_relationships", "motion_binding", "action_binding",
    }  # fmt: skip
    for item in by_task["visibility"]:
        (obj,) = item.facts.objects
        later = "second half" in item.prompt or "comes into view" in item.prompt
        assert obj.visibility == ("appears" if later else "disappears"), item.prompt
    for item in by_task["dynamics"]:
        if len(item.facts.objects) == 1:
            (obj,) = item.facts.objects
            way = {"right": "to the right", "left": "to the left", "down": "to the bottom"}
            assert way.get(obj.motion, "to the top") in item.prompt
        else:
            first, last = item.facts.relations
            assert f"from the {first.relation.split()[0]} of" in item.prompt
            assert f"to its {last.relation.split()[0]}" in item.prompt
            assert (first.when, last.when) == ("first", "last")
    for item in by_task["sequential"]:
        path = item.facts.objects[0].path
        positions = [item.prompt.index(r) for r in path]
        assert positions == sorted(positions) and len(set(path)) == 3
        for a, b in zip(path, path[1:], strict=False):  # one side changes per move
            assert sum(x != y for x, y in zip(a.split(), b.split(), strict=True)) == 1
    words = {"left of": "left", "right of": "right", "above": ("above", "over")}
    for item in by_task["spatial_relationships"]:
        (rel,) = item.facts.relations
        expect = words.get(rel.relation, ("below", "under"))
        assert any(w in item.prompt for w in np.atleast_1d(expect)), item.prompt
    for item in by_task["motion_binding"]:
        a, b = item.facts.objects
        assert a.motion != b.motion
        assert item.prompt.index(a.noun) < item.prompt.index(b.noun)


def test_combined_suites_interleave_their_parts():
    items = make_suite("lvd", 12, seed=1)
    assert [i.task for i in items[:5]] == [
        "numeracy", "attribution", "visibility", "dynamics", "sequential",
    ]  # fmt: skip
    assert [i.task for i in items].count("numeracy") == 3  # 12 = 3 + 3 + 2 + 2 + 2
    assert [i.id for i in items if i.task == "numeracy"] == [
        i.id for i in make_suite("lvd-numeracy", 3, seed=1)
    ]


def test_shapes_suite_is_the_worlds_held_out_captions_by_fold():
    items = make_suite("shapes", 6, seed=3)
    assert all(fold_of(i.prompt) == 3 for i in items)
    for item in items:
        groups = shapes_groups(item)
        assert caption_of(groups) == item.prompt and is_held_out(groups)
        assert [o.action for o in item.facts.objects] == [
            {"jump": "jump", "still": "stay"}.get(g.motion, "move") for g in groups
        ]
    # the same stream as the benchmark's captions, less the other folds
    stream = [caption_of(g) for g in sample_eval_groups(40, seed=3)]
    mine = [p for p in stream if fold_of(p) == 3]
    assert [i.prompt for i in items] == mine[:6]
    other = make_suite("shapes", 6, seed=1)
    assert not {i.prompt for i in items} & {i.prompt for i in other}
    with pytest.raises(StarVidError, match="not a shapes-world caption"):
        shapes_groups(make_suite("lvd-numeracy", 1)[0])


def test_items_round_trip_through_json_lines(tmp_path):
    items = make_suite("lvd", 10, seed=0) + make_suite("shapes", 2, seed=0)
    path = tmp_path / "suite" / "items.jsonl"
    write_items(items, path)
    lines = path.read_text().splitlines()
    assert len(lines) == 12 and json.loads(lines[0])["prompt"] == items[0].prompt
    assert read_items(path) == items


def test_bad_items_name_the_line_and_field(tmp_path):
    good = make_suite("lvd-sequential", 1)[0].model_dump()
    path = tmp_path / "bad.jsonl"
    bad = json.loads(json.dumps(good))
    bad["facts"]["objects"][0]["path"] = ["upper left", "middle"]
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(bad) + "\n")
    with pytest.raises(StarVidError, match=r"line 3: facts\.objects\.0\.path\.1: Input should be"):
        read_items(path)
    bad["facts"]["objects"][0]["path"] = ["upper left"]
    path.write_text(json.dumps(bad) + "\n")
    with pytest.raises(StarVidError, match="line 1: item: .*'path' of 3 regions"):
        read_items(path)
    path.write_text("{not json\n")
    with pytest.raises(StarVidError, match="line 1: not JSON"):
        read_items(path)
    with pytest.raises(StarVidError, match="cannot read suite items"):
        read_items(tmp_path / "missing.jsonl")


def test_facts_reject_ambiguous_objects_and_bad_relations():
    with pytest.raises(ValueError, match="differ in noun or colour"):
        Facts(objects=[ObjectFact(noun="dog"), ObjectFact(noun="dog", count=2)])
    with pytest.raises(ValueError, match="names object 2 of 2"):
        Facts.model_validate(
            {"objects": [{"noun": "a"}, {"noun": "b"}], "relations": [
                {"subject": 0, "relation": "above", "object": 2}]}
        )  # fmt: skip
    with pytest.raises(ValueError, match="the facts need 'relations'"):
        SuiteItem(
            id="x", suite="s", task="spatial_relationships", prompt="p",
            facts=Facts(objects=[ObjectFact(noun="dog")]),
        )  # fmt: skip
