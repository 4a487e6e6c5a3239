"""StarVid losses and the latent update: values on synthetic maps, the tiny model's response."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from starvid.attention import (
    AttentionStore,
    ForwardMode,
    forward_for_maps,
    install_recorders,
    select_layers,
)
from starvid.backbones import load_backbone
from starvid.guidance import (
    TERM_FLOOR,
    GuidanceTargets,
    box_masks,
    contrastive_loss,
    distribution,
    hold_update_size,
    inbox_share,
    latent_step,
    loss_terms,
    map_distance,
    spatial_loss,
    term_normalizers,
    term_values,
    update_shares,
)
from starvid.parsing import parse_prompt
from starvid.pipelines.guided import GuidedUpdates
from starvid.planning import heuristic_plan
from starvid.settings import make_settings
from starvid.targets import build_targets

# -- synthetic maps ----------------------------------------------------------------------------


def test_box_masks_cover_exact_areas():
    boxes = np.array([[[0, 0, 1, 1], [0, 0, 0.5, 0.5], [0.1, 0.1, 0.3, 0.3]]], dtype=float)
    m = box_masks(boxes, 8, 8)
    assert m.shape == (1, 3, 8, 8)
    assert torch.allclose(m[0, 0], torch.ones(8, 8))
    assert float(m[0, 1].sum()) == pytest.approx(16.0)
    assert float(m[0, 2].sum()) == pytest.approx(0.2 * 8 * 0.2 * 8, rel=1e-5)
    assert float(m.max()) <= 1.0


def _targets(boxes, object_subject, nouns=1, verbs=()):
    # token column s is subject s's noun; verbs follow
    noun_cols = [[s] for s in range(nouns)]
    verb_cols = [(s, [nouns + i]) for i, s in enumerate(verbs)]
    return GuidanceTargets(noun_cols, verb_cols, list(object_subject), np.asarray(boxes, float))


def _blob(frames, h, w, x0, y0, x1, y1):
    m = torch.full((frames, h, w), 1e-6)
    m[:, y0:y1, x0:x1] = 1.0
    return m


def test_spatial_loss_single_instance_values():
    frames, h, w = 2, 8, 8
    t = _targets([[[0, 0, 0.5, 1]] * frames], [0])
    inside = _blob(frames, h, w, 0, 0, 4, 8)[:, None]
    uniform = torch.ones(frames, 1, h, w)
    assert float(spatial_loss(inside, t)) == pytest.approx(0.0, abs=1e-4)
    assert float(spatial_loss(uniform, t)) == pytest.approx(0.25, abs=1e-5)
    share = inbox_share(uniform, t)
    assert share.shape == (1, frames) and np.allclose(share, 0.5)


def test_spatial_loss_asks_each_instance_for_its_share():
    frames, h, w = 1, 8, 8
    left, right = [0, 0, 0.25, 1], [0.75, 0, 1, 1]
    t = _targets([[left], [right]], [0, 0])
    both = (_blob(frames, h, w, 0, 0, 2, 8) + _blob(frames, h, w, 6, 0, 8, 8))[:, None]
    one = _blob(frames, h, w, 0, 0, 2, 8)[:, None]  # one cat in the left box only
    big = torch.ones(frames, 1, h, w)  # one big cat over both boxes and the gap
    l_both, l_one, l_big = (float(spatial_loss(m, t)) for m in (both, one, big))
    assert l_both == pytest.approx(0.0, abs=1e-4)
    assert l_one == pytest.approx(1.0, abs=1e-3)  # (1 - 2*1)^2 and (1 - 0)^2
    assert l_big == pytest.approx(0.25, abs=1e-4)  # each box holds 1/4, asks for 1/2
    assert l_both < l_big < l_one
    # top-k form agrees on the order
    k_both, k_one = (float(spatial_loss(m, t, form="topk")) for m in (both, one))
    assert k_both < k_one


def test_phrase_mode_pulls_the_adjective_into_the_box_too():
    frames, h, w = 1, 8, 8
    t = _targets([[[0, 0, 0.5, 1]]], [0])  # column 0: the noun; column 1: its adjective
    noun_in = _blob(frames, h, w, 0, 0, 4, 8)
    adj_out = _blob(frames, h, w, 4, 0, 8, 8)
    maps = torch.stack([noun_in, adj_out], dim=1)
    assert float(spatial_loss(maps, t)) == pytest.approx(0.0, abs=1e-4)  # the noun is in
    t.spatial_cols = [[0, 1]]
    assert float(spatial_loss(maps, t)) == pytest.approx(0.25, abs=1e-3)  # half the phrase out
    both_in = torch.stack([noun_in, noun_in], dim=1)
    assert float(spatial_loss(both_in, t)) == pytest.approx(0.0, abs=1e-4)


def _plain_and_phrase_targets(prompt: str, **words):
    """The tiny backbone's targets of ``prompt`` at the default words and at ``words``."""
    bb = load_backbone("tiny", device="cpu")
    parsed = parse_prompt(prompt)
    plan = heuristic_plan(parsed, frames=4, seed=0)
    return build_targets(bb.tokenizer, parsed, plan), build_targets(
        bb.tokenizer, parsed, plan, **words
    )


def test_build_targets_phrase_mode_records_the_adjectives():
    plain, phrase = _plain_and_phrase_targets(
        "two red cats walking and a small dog", spatial_words="phrase"
    )
    assert plain.targets.spatial_cols is None and "red" not in plain.labels
    assert {"red", "small"} <= set(phrase.labels)
    assert phrase.targets.noun_cols == [phrase.labels["cats"], phrase.labels["dog"]]
    assert phrase.targets.spatial_cols == [
        phrase.labels["cats"] + phrase.labels["red"],
        phrase.labels["dog"] + phrase.labels["small"],
    ]


def test_build_targets_syntax_phrase_mode_binds_each_verb_with_its_motion_words():
    plain, phrase = _plain_and_phrase_targets(
        "a dog running from left to right and jumping, and two cats staying still",
        syntax_words="phrase",
    )
    assert "still" not in plain.labels and "left" not in plain.labels
    labels = phrase.labels
    assert {"left", "right", "still"} <= set(labels)
    assert phrase.label_subjects["still"] == {"kind": "motion", "subject": 1}
    # each verb's loss columns: the verb's own, then its motion words ("jumping" has none)
    assert phrase.targets.verb_cols == [
        (0, labels["running"] + labels["left"] + labels["right"]),
        (0, labels["jumping"]),
        (1, labels["staying"] + labels["still"]),
    ]
    assert plain.targets.verb_cols == [
        (0, labels["running"]),
        (0, labels["jumping"]),
        (1, labels["staying"]),
    ]
    # the verbs' own heat maps keep their own columns
    assert [phrase.labels[v] for v in ("running", "staying")] == [
        plain.labels[v] for v in ("running", "staying")
    ]


def test_contrastive_loss_prefers_own_noun():
    frames, h, w = 3, 8, 8
    cat = _blob(frames, h, w, 0, 0, 3, 3)
    dog = _blob(frames, h, w, 5, 5, 8, 8)
    t = _targets([[[0, 0, 0.4, 0.4]] * frames], [0], nouns=2, verbs=[0])
    good = torch.stack([cat, dog, cat], 1)  # verb of the cat sits on the cat
    bad = torch.stack([cat, dog, dog], 1)  # ... on the dog
    for distance in ("kl", "cosine"):
        lg = float(contrastive_loss(good, t, adjacent_frames=1, distance=distance))
        lb = float(contrastive_loss(bad, t, adjacent_frames=1, distance=distance))
        assert lg < lb, distance
    # InfoNCE with 3 positives (k=1 inside a 3-frame clip) vs 3 negatives when all maps match
    same = torch.stack([cat, cat, cat], 1)
    assert float(contrastive_loss(same, t, adjacent_frames=1, temperature=0.5)) == pytest.approx(
        math.log(2), abs=1e-3
    )


def test_contrastive_window_uses_adjacent_frames_only():
    frames, h, w = 4, 6, 6
    cat = torch.stack([_blob(1, h, w, f, 0, f + 2, 2)[0] for f in range(frames)]) + 0.05
    dog = _blob(frames, h, w, 0, 4, 6, 6) + 0.05
    verb = cat.clone()
    t = _targets([[[0, 0, 0.3, 0.3]] * frames], [0], nouns=2, verbs=[0])
    maps = torch.stack([cat, dog, verb], 1)
    tau = 0.5
    # k=0: frame f against frame f only; the positive distance is 0
    d_neg = map_distance(distribution(verb), distribution(dog), "kl")
    want = torch.log1p(torch.exp(-d_neg / tau)).mean()
    l0 = contrastive_loss(maps, t, adjacent_frames=0, temperature=tau)
    assert float(l0) == pytest.approx(float(want), rel=1e-4)
    # k=3: every frame also sees the shifted cat maps and the dog maps of other frames
    l3 = contrastive_loss(maps, t, adjacent_frames=3, temperature=tau)
    assert abs(float(l3) - float(l0)) > 1e-3


def test_distance_is_zero_for_equal_maps():
    p = distribution(torch.rand(2, 5, 5) + 0.1)
    assert torch.allclose(map_distance(p, p, "kl"), torch.zeros(2), atol=1e-6)
    assert torch.allclose(map_distance(p, p, "cosine"), torch.zeros(2), atol=1e-6)
    with pytest.raises(ValueError):
        map_distance(p, p, "l2")


def test_latent_step_normalizes_clips_and_guards():
    g = torch.randn(1, 4, 2, 8, 8) * 7.0
    step, problem = latent_step(g, 0.3, "rms", noise_scale=0.5)
    assert problem is None
    assert float(step.pow(2).mean().sqrt()) == pytest.approx(0.15, rel=1e-4)
    assert torch.allclose(step / step.norm(), g / g.norm(), atol=1e-6)  # same direction
    raw, _ = latent_step(g, 0.01, "none", max_grad_norm=1.0)
    assert float(raw.norm()) == pytest.approx(0.01, rel=1e-4)
    bad = g.clone()
    bad[0, 0, 0, 0, 0] = float("nan")
    step, problem = latent_step(bad, 0.3)
    assert step is None and "NaN" in problem
    inf = g.clone()
    inf[0, 1, 1, 1, 1] = float("inf")
    step, problem = latent_step(inf, 0.3)
    assert step is None
    step, problem = latent_step(torch.zeros_like(g), 0.3)
    assert step is None and "zero" in problem
    # per_term: the gradient arrives normalized and weighted; only the step size scales it
    per_term, _ = latent_step(g, 0.3, "per_term", noise_scale=0.5)
    assert torch.allclose(per_term, 0.15 * g)


def test_term_values_raw_weighted_and_total():
    frames, h, w = 2, 8, 8
    t = _targets([[[0, 0, 0.5, 1]] * frames], [0], nouns=2, verbs=[0])
    maps = torch.rand(frames, 3, h, w) + 0.01
    terms = loss_terms(maps, t)
    row = term_values(terms, {"spatial": 2.0, "syntax": 0.5})
    raw_spatial, raw_syntax = float(spatial_loss(maps, t)), float(contrastive_loss(maps, t))
    assert row["spatial_raw"] == pytest.approx(raw_spatial, rel=1e-6)
    assert row["syntax_raw"] == pytest.approx(raw_syntax, rel=1e-6)
    assert row["spatial"] == pytest.approx(2.0 * raw_spatial, rel=1e-5)
    assert row["syntax"] == pytest.approx(0.5 * raw_syntax, rel=1e-5)
    assert row["total"] == pytest.approx(row["spatial"] + row["syntax"], rel=1e-6)
    off = term_values(terms, {"spatial": 0.0, "syntax": 0.0})
    assert off["spatial"] == off["syntax"] == off["total"] == 0.0
    assert off["spatial_raw"] == pytest.approx(raw_spatial)  # an idle term still shows its value
    # no verbs: no syntax term, and it reads 0
    no_verbs = _targets([[[0, 0, 0.5, 1]] * frames], [0], nouns=2, verbs=[])
    assert set(loss_terms(maps, no_verbs)) == {"spatial"}


def test_per_term_normalizers_scale_each_term_to_unit_rms_with_a_floor():
    grads = {"spatial": torch.full((4, 4), 3.0), "syntax": torch.full((4, 4), 1e-9)}
    norms = term_normalizers(grads, "per_term")
    assert norms["spatial"] == pytest.approx(3.0)
    # a vanishing term is not blown up to the size of the others
    assert norms["syntax"] == pytest.approx(TERM_FLOOR * 3.0)
    assert term_normalizers(grads, "rms") == {"spatial": 1.0, "syntax": 1.0}
    shares = update_shares(grads, {"spatial": 1.0, "syntax": 1.0}, norms)
    assert shares["spatial_share"] == pytest.approx(1.0, abs=1e-5)
    assert shares["syntax_share"] == pytest.approx(0.0, abs=1e-5)
    live = {"spatial": torch.full((4, 4), 3.0), "syntax": torch.full((4, 4), -0.5)}
    norms = term_normalizers(live, "per_term")
    shares = update_shares(live, {"spatial": 1.0, "syntax": 0.25}, norms)
    assert shares["spatial_share"] == pytest.approx(0.8)
    assert shares["syntax_share"] == pytest.approx(0.2)


def test_hold_update_size_rescales_to_the_first_updates_rms():
    g = torch.tensor([[3.0, -4.0], [0.0, 0.0]])  # RMS 2.5
    held = hold_update_size(g, 0.5)
    assert float(held.pow(2).mean().sqrt()) == pytest.approx(0.5)
    assert torch.allclose(held, g / 5.0)  # the direction is kept
    zero = torch.zeros(2, 2)
    assert torch.equal(hold_update_size(zero, 0.5), zero)  # nothing to steer stays nothing


# -- on the tiny model -------------------------------------------------------------------------

PROMPT = "two cats walking to the left and a dog jumping on the right"


@pytest.fixture(scope="module")
def setup():
    bb = load_backbone("tiny", device="cpu")
    parsed = parse_prompt(PROMPT)
    settings = make_settings({}).resolve(bb)
    plan = heuristic_plan(parsed, frames=settings.frames, seed=0)
    words = build_targets(bb.tokenizer, parsed, plan)
    store = AttentionStore(words.positions, select_layers(bb.unet, settings.record_layers))
    sched = bb.new_scheduler()
    sched.set_timesteps(settings.steps)
    latents = bb.seeded_latents(settings, bb.device)
    cond, _ = bb.encode_prompt(PROMPT, bb.device, 1, False)
    return bb, words.targets, store, sched, latents, cond, settings


def _maps_at(bb, store, sched, z, t, cond):
    with install_recorders(bb.unet, store), store.mode(ForwardMode()), torch.no_grad():
        bb.unet(sched.scale_model_input(z, t), t, encoder_hidden_states=cond)
        return store.layer_mean()


def _run_guide(setup, latents, **overrides):
    bb, targets, store, sched, _, cond, settings = setup
    s = settings.model_copy(update=overrides)
    t = sched.timesteps[0]

    def forward(z, t):
        forward_for_maps(bb.unet, sched.scale_model_input(z, t), t, cond)

    guide = GuidedUpdates(bb.unet, sched, forward, store, targets, s, lambda: None)
    with install_recorders(bb.unet, store):
        out, _ = guide.step(latents, t, 0)
    return out, guide.losses, guide.warnings


def test_both_losses_fall_within_a_guided_step(setup):
    _, _, _, _, latents, _, _ = setup
    # equal weights (per-term normalized): each pulls with its weight, a term whose gradient is
    # under a tenth of the other's in proportion; shares follow the pulls
    _, losses, warn = _run_guide(setup, latents, iterations=4, syntax_weight=1.0)
    assert not warn
    assert [row["iteration"] for row in losses] == [0, 1, 2, 3]
    first = losses[0]
    assert max(first["spatial_pull"], first["syntax_pull"]) == pytest.approx(1.0)
    assert 0.3 < min(first["spatial_pull"], first["syntax_pull"]) <= 1.0
    pulls = first["spatial_pull"] + first["syntax_pull"]
    assert first["spatial_share"] == pytest.approx(first["spatial_pull"] / pulls, rel=1e-4)
    first, last = losses[0], losses[-1]
    assert last["spatial"] < first["spatial"]
    assert last["syntax"] < first["syntax"]
    assert last["total"] < first["total"]


def _kl(verb, noun):
    return float(map_distance(distribution(verb), distribution(noun), "kl").mean())


def test_contrastive_guidance_binds_verbs_to_their_nouns(setup):
    bb, targets, store, sched, latents, cond, _ = setup
    t = sched.timesteps[0]
    before = _maps_at(bb, store, sched, latents, t, cond)
    moved, _, warn = _run_guide(setup, latents, spatial_weight=0.0, syntax_weight=1.0, iterations=5)
    assert not warn
    after = _maps_at(bb, store, sched, moved, t, cond)
    nouns = targets.noun_cols
    for s, cols in targets.verb_cols:
        own_b = _kl(before[:, cols].sum(1), before[:, nouns[s]].sum(1))
        own_a = _kl(after[:, cols].sum(1), after[:, nouns[s]].sum(1))
        assert own_a < own_b * 0.9  # closer to its own noun
        for o, other in enumerate(nouns):
            if o == s:
                continue
            ratio_b = _kl(before[:, cols].sum(1), before[:, other].sum(1)) / own_b
            ratio_a = _kl(after[:, cols].sum(1), after[:, other].sum(1)) / own_a
            assert ratio_a > ratio_b  # relatively farther from the other noun than from its own


def test_nan_latents_skip_the_update_with_a_warning(setup):
    _, _, _, _, latents, _, _ = setup
    bad = latents.clone()
    bad[0, 0, 0, 0, 0] = float("nan")
    out, losses, warn = _run_guide(setup, bad, iterations=3)
    assert len(losses) == 1  # stopped at the first non-finite loss
    assert warn and "non-finite" in warn[0]
    assert torch.equal(torch.isnan(out), torch.isnan(bad))
    assert torch.equal(torch.nan_to_num(out), torch.nan_to_num(bad))  # unchanged
