"""The shapes benchmark's tooling for the syntax-aware loss (issue 24): verb-after captions and
where the verbs' maps sit."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from starvid.parsing import parse_stream
from starvid.shapes.world import MOTION_VERBS, caption_of, sample_eval_groups


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
