"""The shapes benchmark's tooling for the syntax-aware loss (issue 24): verb-after captions and
where the verbs' maps sit."""

from __future__ import annotations

import importlib
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from starvid.guidance import GuidanceTargets, contrastive_loss, verb_distances
from starvid.parsing import parse_prompt, parse_stream
from starvid.shapes.world import MOTION_VERBS, caption_of, sample_eval_groups
from starvid.targets import label_roles


def _bench():
    """benchmarks/shapes_eval.py as a module (as tests/test_shapes.py loads it)."""
    bench_dir = str(Path(__file__).resolve().parents[1] / "benchmarks")
    if bench_dir not in sys.path:
        sys.path.insert(0, bench_dir)
    return importlib.import_module("shapes_eval")


def test_verb_after_captions_bind_each_verb_to_its_own_noun():
    bench = _bench()
    pool = sample_eval_groups(100, seed=1)
    captions = [bench.verb_after_caption(g) for g in pool]
    assert captions[0] != caption_of(pool[0]) and ", the " in captions[0]
    wrong = []
    for groups, parsed in zip(pool, parse_stream(captions), strict=True):
        got = [(s.noun, s.count, s.verb_lemmas) for s in parsed.subjects]
        want = [(g.shape, g.count, [MOTION_VERBS[g.motion]]) for g in groups]
        comma = parsed.prompt.index(",")
        after = all(v.start > comma for s in parsed.subjects for v in s.verbs)
        nouns_before = all(s.head.end <= comma for s in parsed.subjects)
        if got != want or not after or not nouns_before or parsed.scene:
            wrong.append((parsed.prompt, got))
    assert wrong == []
    item = bench.caption_item(pool[0], verb_after=True)
    assert item.prompt == captions[0] and item.facts == bench.caption_item(pool[0]).facts


def _maps():
    """Two frames of 2x2 maps: the verb where its own noun is (at 3x the mass), the other noun
    spread evenly."""
    verb = np.array([[[0.5, 0.5], [0.0, 0.0]]] * 2)
    return {"square": 3 * verb, "jumping": verb, "circle": np.full((2, 2, 2), 0.25)}


def test_verb_map_distances_by_value():
    roles = label_roles(parse_prompt("a red circle moving left and a blue square jumping"))
    assert roles == {
        "circle": ("noun", 0),
        "moving": ("verb", 0),
        "square": ("noun", 1),
        "jumping": ("verb", 1),
    }
    maps = _maps()
    kl = verb_distances(maps, roles)  # "moving" has no map here: only "jumping" counts
    assert kl["own"] == pytest.approx(0.0, abs=1e-6)
    assert kl["other"] == pytest.approx(np.log(2), abs=1e-6)  # KL([.5,.5,0,0] || uniform)
    cos = verb_distances(maps, roles, "cosine")
    assert cos["other"] == pytest.approx(1 - 0.5**0.5, abs=1e-6)
    swapped = verb_distances(maps, {**roles, "jumping": ("verb", 0)})
    assert swapped["own"] == pytest.approx(np.log(2), abs=1e-6) and swapped["other"] < 1e-6


def _diagnosis_row(verb_kl: dict) -> dict:
    """A benchmark row of one one-subject video with the given verb-map distances."""
    return {
        "baseline": {"all": 0.0},
        "starvid": {"all": 1.0},
        "groups": [{"count": 1, "baseline": True, "starvid": True}],
        "extra": {"baseline": False, "starvid": False},
        "verb_kl": verb_kl,
    }


def test_the_benchmark_averages_where_the_verb_maps_sit():
    bench = _bench()
    row = _diagnosis_row(
        {"baseline": {"own": 4.0, "other": 9.0}, "starvid": {"own": 2.0, "other": 12.0}}
    )
    other = row | {"verb_kl": row["verb_kl"] | {"baseline": {"own": 2.0, "other": 7.0}}}
    diag = bench.diagnosis([row, other])
    assert diag["verb_map_kl"] == {
        "baseline": {"own": 3.0, "other": 8.0},
        "starvid": {"own": 2.0, "other": 12.0},
    }


def test_one_subject_rows_have_no_distance_to_other_nouns_and_no_warning():
    bench = _bench()
    row = _diagnosis_row(
        {arm: {"own": 2.0, "other": float("nan")} for arm in ("baseline", "starvid")}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Mean of empty slice" was printed here
        diag = bench.diagnosis([row, row])
    assert diag["verb_map_kl"]["starvid"]["own"] == 2.0
    assert np.isnan(diag["verb_map_kl"]["starvid"]["other"])


def _two_noun_maps(dog: list[float]) -> torch.Tensor:
    """(2 frames, [cat, dog, verb of the cat], 2, 2): the verb on half the frame, the cat
    spread evenly."""
    cat, verb = [0.25] * 4, [0.5, 0.5, 0.0, 0.0]
    frame = torch.tensor([cat, dog, verb], dtype=torch.float64).reshape(3, 2, 2)
    return torch.stack([frame, frame])


TARGETS = GuidanceTargets(
    noun_cols=[[0], [1]], verb_cols=[(0, [2])], object_subject=[], boxes=np.zeros((0, 2, 4))
)


def test_hinge_form_by_value():
    far = _two_noun_maps([0.0, 0.0, 0.5, 0.5])  # the other noun where the verb is not
    own = math.log(2)  # KL([.5, .5, 0, 0] || uniform)
    hinge = dict(adjacent_frames=0, form="hinge")
    # the other noun is far beyond the margin: only the pull toward the own noun is left
    assert float(contrastive_loss(far, TARGETS, margin=1.0, **hinge)) == pytest.approx(own)
    # InfoNCE on the same maps is saturated: nothing left to pull
    assert float(contrastive_loss(far, TARGETS, adjacent_frames=0)) < 1e-6
    # the other noun as close as the own one: the push is the margin
    near = _two_noun_maps([0.25] * 4)
    assert float(contrastive_loss(near, TARGETS, margin=1.0, **hinge)) == pytest.approx(own + 1)
    assert float(contrastive_loss(near, TARGETS, margin=3.0, **hinge)) == pytest.approx(own + 3)
    with pytest.raises(ValueError):
        contrastive_loss(near, TARGETS, form="triplet")


def test_the_syntax_form_reaches_the_guided_loop(tmp_path):
    from starvid.run import GenerationRequest, run_generation
    from starvid.settings import GenerationSettings

    parsed = parse_prompt("a dog running and a cat jumping")
    raw = {}
    for form in ("infonce", "hinge"):
        settings = GenerationSettings(steps=2, frames=2, iterations=1, syntax_form=form)
        request = GenerationRequest(parsed, "tiny", settings, device="cpu")
        result = run_generation(request, tmp_path / form)
        report = json.loads(result.files["report"].read_text())
        raw[form] = report["losses"][0]["syntax_raw"]
    assert raw["hinge"] != pytest.approx(raw["infonce"], rel=1e-3)
