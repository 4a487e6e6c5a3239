"""The attention debugger (issue 26): every token, every layer, every step, on the shipped
shapes model, recorded by a real run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from starvid.attention import mean_over_layers

PROMPT = "two red circles moving left and a blue square jumping"
# two resolutions among the guidance layers, so the average is not one layer's map
GUIDANCE_LAYERS = "down_blocks.0,mid_block"


@pytest.fixture(scope="module")
def shapes():
    from starvid.backbones import load_backbone

    return load_backbone("shapes", device="cpu")


@pytest.fixture(scope="module")
def runs(shapes):
    kw = dict(seed=0, steps=6, record_layers=GUIDANCE_LAYERS, record_attention="full")
    guided = shapes(PROMPT, **kw)
    baseline = shapes(PROMPT, guided=False, **kw)
    return guided, baseline


def test_default_run_records_no_debugger_maps(shapes):
    out = shapes(PROMPT, seed=0, steps=2)
    assert out.attention is None


def test_every_token_of_the_prompt_is_recorded(runs):
    rec = runs[0].attention
    assert rec.tokens[0] == "<start>" and rec.tokens[-1] == "<end>"
    assert {"two", "red", "circles", "and", "blue", "jumping"} <= set(rec.words)
    assert rec.n_steps == 6
    assert len(rec.layer_names) == 7  # every spatial cross-attention layer of the shapes U-Net
    assert set(rec.layer_means()) == set(rec.layer_names)


def test_maps_of_a_word_that_is_no_noun_or_verb_differ_from_a_nouns(runs):
    rec = runs[0].attention
    noun = rec.word_map("circles")
    for other in ("red", "and", "two", "#0", "<end>"):
        m = rec.word_map(other)
        assert m.shape == noun.shape and np.isfinite(m).all() and m.max() > 0
        # the mean absolute difference is a sizeable part of the noun map's own mean
        assert np.abs(m - noun).mean() > 0.2 * noun.mean(), other


def test_per_layer_maps_average_to_the_map_the_guidance_used(runs):
    for out in runs:
        rec = out.attention
        assert len(rec.guidance_layers) == 2
        shapes_seen = {rec.word_map("circles", layer).shape for layer in rec.guidance_layers}
        assert len(shapes_seen) == 2  # two resolutions: the coarse one is upsampled
        for word in ("circles", "square", "moving", "jumping"):
            per_layer = {
                n: torch.from_numpy(rec.word_map(word, n))[:, None] for n in rec.guidance_layers
            }
            averaged = mean_over_layers(per_layer)[:, 0].numpy()
            np.testing.assert_allclose(averaged, out.maps[word], rtol=0, atol=1e-6)
            # the per-step maps are the same maps, one step at a time (float16)
            np.testing.assert_allclose(rec.word_map(word), out.maps[word], rtol=0, atol=5e-4)


def test_guided_run_marks_its_window_and_baseline_none(runs):
    guided, baseline = runs
    assert guided.attention.window == 2  # default: the first quarter of 6 steps
    assert baseline.attention.window == 0
