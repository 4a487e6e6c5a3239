"""Shapes world, exact scorer, world tokenizer and model, and a short training run that resumes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from starvid.attention import AttentionStore
from starvid.backbones import load_backbone
from starvid.plan import validate_plan
from starvid.shapes.losses import aux_loss
from starvid.shapes.model import (
    PixelShuffleVAE,
    build_tokenizer,
    latents_to_video,
    video_to_latents,
)
from starvid.shapes.score import CATEGORIES, classify_motion, score_video, summarize
from starvid.shapes.train import main
from starvid.shapes.world import (
    COLORS,
    MOTION_VERBS,
    MOTIONS,
    SHAPES,
    VOCAB,
    Group,
    WorldConfig,
    caption_of,
    groups_of_caption,
    is_held_out,
    parsed_caption,
    render,
    sample_eval_groups,
    sample_scene,
    structure_key,
)


@pytest.fixture(scope="module")
def scenes():
    return [sample_scene(i) for i in range(150)]


@pytest.fixture(scope="module")
def eval_groups():
    return sample_eval_groups(60, seed=0)


# -- world ------------------------------------------------------------------------------------


def test_world_is_deterministic_and_seeds_differ():
    a, b, c = sample_scene(11), sample_scene(11), sample_scene(12)
    assert a.caption == b.caption
    assert np.array_equal(a.video, b.video) and np.array_equal(a.masks, b.masks)
    assert a.video.shape == (8, 32, 32, 3) and a.video.dtype == np.uint8
    assert not np.array_equal(a.video, c.video)


def test_the_world_draws_what_it_drew_before():
    """Pixel for pixel the videos, masks and held-out captions of commit e497dff (before the
    faster placement): benchmark figures of different commits stay comparable."""
    import hashlib

    h = hashlib.sha256()
    for seed in range(30):
        x = sample_scene(seed)
        h.update(x.video.tobytes() + x.masks.tobytes() + x.caption.encode())
    for i, groups in enumerate(sample_eval_groups(12, seed=1)):
        h.update(structure_key(groups).encode() + render(groups, seed=i % 3).video.tobytes())
    assert h.hexdigest() == "a8646d6f091a2a84fb5fc6028a400f6a8995b9e719c6ec024caa3acb14947bf1"


def test_sample_truth_is_consistent(scenes):
    for s in scenes[:40]:
        assert s.masks.shape == (len(s.objects), 8, 32, 32)
        assert s.masks.sum(0).max() <= 1  # objects never overlap
        assert len(s.objects) == sum(g.count for g in s.groups)
        for obj, m in zip(s.objects, s.masks, strict=True):
            g = s.groups[obj.group]
            assert (obj.color, obj.shape, obj.motion) == (g.color, g.shape, g.motion)
            for f in (0, 7):
                ys, xs = np.nonzero(m[f])
                assert abs(xs.mean() + 0.5 - obj.trajectory[f, 0]) < 1.5
                # a triangle's area centroid sits below its box centre
                tol = 2.5 if obj.shape == "triangle" else 1.5
                assert abs(ys.mean() + 0.5 - obj.trajectory[f, 1]) < tol
        for w in s.words:
            assert s.caption[w.start : w.end] == w.text == s.caption.split()[w.index]
        assert set(s.caption.split()) <= set(VOCAB)


def test_world_covers_its_categories(scenes):
    groups = [g for s in scenes for g in s.groups]
    assert {g.color for g in groups} == set(COLORS)
    assert {g.shape for g in groups} == set(SHAPES)
    assert {g.count for g in groups} == {1, 2, 3, 4}
    assert {g.motion for g in groups} == set(MOTION_VERBS)
    assert {len(s.groups) for s in scenes} == {1, 2, 3}
    assert any(s.video.std(axis=(0, 3)).max() > 0 for s in scenes)
    big = sample_scene(3, WorldConfig(size=64, frames=16))
    assert big.video.shape == (16, 64, 64, 3)


def test_held_out_split(scenes, eval_groups):
    assert not any(is_held_out(s.groups) for s in scenes)
    assert len({caption_of(g) for g in eval_groups}) == 60
    for a, b in eval_groups:
        assert is_held_out([a, b])
        assert a.color != b.color and a.shape != b.shape and a.motion != b.motion
    assert sample_eval_groups(5, seed=0) == eval_groups[:5]
    assert sample_eval_groups(5, seed=1) != eval_groups[:5]


def test_bad_world_settings():
    from starvid.errors import StarVidError

    with pytest.raises(StarVidError):
        WorldConfig(size=48)
    with pytest.raises(StarVidError):
        render([Group("purple", "circle", 1, "left")], seed=0)


# -- captions parse with the project's parser -------------------------------------------------


def _texts(words) -> list[str]:
    return [w.text for w in words]


def test_captions_parse(scenes, eval_groups):
    """Every caption parses into its subjects, counts, verbs and the verbs' motion words (this
    also guards the parser)."""
    from starvid.parsing import parse_prompt

    more = [sample_scene(i).groups for i in range(150, 250)]
    pool = [s.groups for s in scenes] + eval_groups + more
    assert len(pool) >= 300
    wrong = []
    for groups in pool:
        cap = caption_of(groups)
        parsed = parse_prompt(cap)
        got = [(s.noun, s.count, s.verb_lemmas) for s in parsed.subjects]
        want = [(g.shape, g.count, [MOTION_VERBS[g.motion]]) for g in groups]
        truth = parsed_caption(groups)
        if got != want or parsed.to_dict() != truth.to_dict():
            wrong.append((cap, got))
        elif [_texts(s.complements) for s in parsed.subjects] != [
            _texts(s.complements) for s in truth.subjects
        ]:
            wrong.append((cap, [_texts(s.complements) for s in parsed.subjects]))
    assert wrong == []


def test_captions_read_back_into_groups(scenes, eval_groups):
    """groups_of_caption inverts caption_of on every caption, and names what is not the world's."""
    from starvid.errors import StarVidError

    for groups in [s.groups for s in scenes] + eval_groups:
        assert groups_of_caption(caption_of(groups)) == groups
    assert groups_of_caption(" One RED circle  moving left and two blue square staying still") == [
        Group("red", "circle", 1, "left"),
        Group("blue", "square", 2, "still"),
    ]
    for bad, named in [
        ("", "empty"),
        ("a red circle", "'a red circle'"),
        ("two purple circles jumping", "'two purple circles jumping'"),
        ("a red circle jumping and", "'a red circle jumping and'"),
        ("a red circle jumping and a dog", "'a dog'"),
    ]:
        with pytest.raises(StarVidError, match=named):
            groups_of_caption(bad)


# -- scorer -----------------------------------------------------------------------------------


def test_scorer_on_ground_truth(scenes, eval_groups):
    scores = [score_video(s.video, s.groups) for s in scenes]
    scores += [score_video(render(g, seed=i % 3).video, g) for i, g in enumerate(eval_groups[:40])]
    # the scorer is exact on the world's own videos: every category, every video
    assert summarize(scores) == {cat: 1.0 for cat in CATEGORIES}
    assert not any(s.motion_leak for s in scores)
    cfg = WorldConfig(size=64, frames=16)
    big = [sample_scene(i, cfg) for i in range(12)]
    assert summarize([score_video(s.video, s.groups, cfg) for s in big])["all"] == 1.0


def test_scorer_catches_wrong_videos(eval_groups):
    g = eval_groups[0]
    video = render(g, seed=2).video
    a, b = g
    swapped = [replace(a, motion=b.motion), replace(b, motion=a.motion)]
    s = score_video(video, swapped)
    assert not s.action_binding and s.numeracy and s.attribute
    assert s.motion_leak and not score_video(video, g).motion_leak  # each did the other's motion
    third = [m for m in MOTIONS if m not in (a.motion, b.motion)][0]
    s = score_video(video, [replace(a, motion=third), b])
    assert not s.action_binding and not s.motion_leak  # wrong, but not the other's motion
    # a moving subject kept still beside one told to stay still: not moving, not the other's
    # action (the old measure counted it, and layout-only plans hold every subject still)
    mover, other = next(p for p in eval_groups if "still" not in (p[0].motion, p[1].motion))
    both_still = [replace(mover, motion="still"), replace(other, motion="still")]
    s = score_video(render(both_still, seed=2).video, [mover, both_still[1]])
    assert set(s.groups[0].motions_seen) == {"still"}  # it did do the other subject's word
    assert not s.action_binding and not s.motion_leak
    more = [replace(a, count=a.count % 3 + 1), b]
    assert not score_video(video, more).numeracy
    # the other subject recoloured: its count is not checked, but the extra colour fails numeracy
    s = score_video(video, [a])
    assert s.extra_objects == b.count and not s.numeracy and s.attribute
    other = [s for s in SHAPES if s not in (a.shape, b.shape)][0]
    assert not score_video(video, [replace(a, shape=other), b]).attribute
    blank = np.full_like(video, 60)
    s = score_video(blank, g)
    assert not (s.numeracy or s.attribute or s.action_binding) and s.motion == 0.0


def test_motion_classes():
    def path(dx, dy, arc=0.0):
        t = np.linspace(0, 1, 8)
        return [
            (i, 10 + dx * ti, 20 + dy * ti - arc * np.sin(np.pi * ti)) for i, ti in enumerate(t)
        ]

    assert classify_motion(path(-10, 0), 32) == "left"
    assert classify_motion(path(10, 1), 32) == "right"
    assert classify_motion(path(0, -10), 32) == "up"
    assert classify_motion(path(1, 10), 32) == "down"
    assert classify_motion(path(0, 0, arc=9), 32) == "jump"
    assert classify_motion(path(0.5, 0.5), 32) == "still"


# -- tokenizer, latents, aux loss -------------------------------------------------------------


def test_tokenizer_has_one_token_per_world_word(scenes):
    tok = build_tokenizer()
    for w in VOCAB:
        assert len(tok(w, add_special_tokens=False)["input_ids"]) == 1
    s = scenes[0]
    ids = tok(s.caption)["input_ids"]
    assert len(ids) == len(s.caption.split()) + 2
    from starvid.attention import token_positions

    pos = token_positions(tok, s.caption, [(w.start, w.end) for w in s.words])
    assert pos == [[w.index + 1] for w in s.words]


def test_pixel_shuffle_latents_are_exact(scenes):
    v = np.stack([scenes[0].video, scenes[1].video])
    z = video_to_latents(v)
    assert z.shape == (2, 48, 8, 8, 8) and z.min() >= -1 and z.max() <= 1
    assert np.array_equal(latents_to_video(z), v)
    vae = PixelShuffleVAE()
    frames = vae.decode(z[0].permute(1, 0, 2, 3)).sample
    back = vae.encode(frames).latent_dist.sample()
    assert torch.equal(back, z[0].permute(1, 0, 2, 3))


def test_aux_loss_is_zero_inside_and_one_outside():
    b, p, f, size = 1, 2, 2, 32
    targets = torch.zeros(b, p, f, size, size)
    targets[0, 0, :, :16, :16] = 1
    weights = torch.tensor([[1.0, 0.0]])
    inside = torch.zeros(b * f, p, 8, 8)
    inside[:, :, :4, :4] = 1 / 16
    store = AttentionStore([1, 2], ["x"])
    store.maps = {"x": inside.requires_grad_(True)}
    assert aux_loss(store, targets, weights).item() == pytest.approx(0.0, abs=1e-6)
    outside = torch.zeros(b * f, p, 8, 8)
    outside[:, :, 4:, 4:] = 1 / 16
    store.maps = {"x": outside}
    assert aux_loss(store, targets, weights).item() == pytest.approx(1.0, abs=1e-6)


# -- training: from scratch, checkpoint, resume, load as a backbone ---------------------------


def test_training_writes_and_resumes(tmp_path, capsys):
    out, state = tmp_path / "shapes", tmp_path / "state.safetensors"
    common = [
        "--batch",
        "2",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--channels",
        "16",
        "32",
        "--out",
        str(out),
        "--state",
        str(state),
        "--log-every",
        "1",
        "--sample-every",
        "0",
        "--warmup",
        "1",
        "--frame-positions",
    ]
    assert main(["--steps", "2", *common]) == 0
    info = json.loads((out / "training.json").read_text())
    assert info["step"] == 2 and info["model"]["channels"] == [16, 32]
    assert info["model"]["prediction"] == "sample"  # the default objective
    for rel in (
        "unet/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors",
        "tokenizer/vocab.json",
        "scheduler/scheduler_config.json",
        "vae/config.json",
        "model_index.json",
    ):
        assert (out / rel).is_file(), rel
    assert not list(out.rglob("*.bin")) and not list(out.rglob(".*.tmp*"))
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(np.isfinite(r["loss"]) for r in log)
    assert all(r["aux"] > 0 for r in log)
    bb1 = load_backbone(str(out), device="cpu", cache=False)
    w1 = bb1.unet.conv_in.weight.clone()
    # a training folder is a pipeline folder with the shipped model's defaults and vocabulary
    from starvid.pipelines import StarVidPipeline
    from starvid.shapes.model import SHAPES_DIR

    shipped = StarVidPipeline.from_pretrained(str(SHAPES_DIR))
    trained = StarVidPipeline.from_pretrained(str(out))
    assert trained.defaults == shipped.defaults and trained.vocabulary == shipped.vocabulary
    # and names its frame positions, so that a plain from_pretrained adds them back
    assert trained.config.frame_positions == 32

    # resumes from the full state; a preview samples, scores and writes the grid
    assert main(["--steps", "1", *common, "--sample-every", "1", "--sample-steps", "2"]) == 0
    info = json.loads((out / "training.json").read_text())
    assert info["step"] == 3
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log[2:]] == [3, 3, 3]  # loss, preview, final preview
    assert set(log[-1]["preview_pair"]) == {
        "numeracy",
        "attribute",
        "motion",
        "action_binding",
        "all",
    }
    assert 0 < log[-1]["noun_ratio"] < 20
    import cv2

    grid = cv2.imread(str(out / "samples.png"))
    assert grid.shape == (10 * 32 * 3, 8 * 32 * 3, 3)
    bb = load_backbone(str(out), device="cpu", cache=False)
    assert not torch.equal(bb.unet.conv_in.weight, w1)  # the EMA weights moved on
    assert bb.vae_scale_factor == 4 and bb.unet.config.in_channels == 48
    z = torch.zeros(1, 48, 8, 8)
    assert bb.vae.decode(z).sample.shape == (1, 3, 32, 32)

    bench = _load_benchmark()
    assert (
        bench.main(
            [
                "--n",
                "1",
                "--seeds",
                "1",
                "--steps",
                "2",
                "--threads",
                "1",
                "--model",
                str(out),
                "--json",
                "--grid",
                "",
            ]
        )
        == 0
    )
    table = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert table["n_videos"] == 1
    assert (
        set(table["baseline"])
        == set(table["starvid"])
        == {"numeracy", "attribute", "motion", "action_binding", "all"}
    )

    # single-object captions, split across two worker processes
    assert (
        bench.main(
            [
                *("--single", "--n", "2", "--seeds", "1", "--steps", "2", "--workers", "2"),
                *("--threads", "2", "--model", str(out), "--json", "--grid", ""),
            ]
        )
        == 0
    )
    table = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert table["n_videos"] == 2 and 0 <= table["baseline"]["attribute"] <= 1
    kinds = {(g[0].color, g[0].shape) for g in bench.single_groups()}
    assert len(kinds) == 12

    state.unlink()  # without the state file a run warm-starts from the saved weights
    assert main(["--steps", "1", *common]) == 0
    assert json.loads((out / "training.json").read_text())["step"] == 4

    # switching the objective warm-starts from the same weights and records the new one
    assert main(["--steps", "1", "--prediction", "v_prediction", *common]) == 0
    info = json.loads((out / "training.json").read_text())
    assert info["step"] == 5 and info["model"]["prediction"] == "v_prediction"
    sched = json.loads((out / "scheduler" / "scheduler_config.json").read_text())
    assert sched["prediction_type"] == "v_prediction"
    loaded = load_backbone(str(out), device="cpu", cache=False)
    assert loaded.scheduler.config.prediction_type == "v_prediction"


def test_a_resumed_run_continues_the_uninterrupted_one(tmp_path):
    """3 steps, stop, 2 more from the saved state == 5 steps in one go: the step count, the raw
    and EMA weights and the AdamW moments all carry over."""
    from safetensors.torch import load_file

    def run(folder, steps):
        args = ["--steps", str(steps), "--batch", "2", "--threads", "1", "--device", "cpu"]
        args += ["--channels", "16", "32", "--frame-positions", "--temporal-weight", "4"]
        args += ["--out", str(folder / "model"), "--state", str(folder / "state.safetensors")]
        args += ["--sample-every", "0", "--warmup", "1", "--ema", "0.9", "--log-every", "1"]
        assert main(args) == 0
        return load_file(folder / "state.safetensors")

    run(tmp_path / "split", 3)
    resumed = run(tmp_path / "split", 2)
    whole = run(tmp_path / "whole", 5)
    assert int(resumed["step"]) == int(whole["step"]) == 5
    assert resumed.keys() == whole.keys()
    kinds = {k.split(".")[0] for k in whole}
    assert {"unet", "text", "ema_unet", "ema_text", "adam"} <= kinds
    for key, value in whole.items():
        torch.testing.assert_close(resumed[key], value, rtol=1e-4, atol=1e-6, msg=key)
    log = (tmp_path / "split" / "model" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == [1, 2, 3, 4, 5]


def test_split_tokens_moves_a_collapsed_pair_apart_once(tmp_path, capsys):
    """--split-tokens sets a pair's embeddings (live and EMA) to their mean plus and minus one
    direction, as far apart as the world words' median distance; other words stay as they are."""
    from safetensors.torch import load_file

    folder = tmp_path / "run"
    args = ["--batch", "2", "--threads", "1", "--device", "cpu", "--channels", "16", "32"]
    args += ["--out", str(folder / "model"), "--state", str(folder / "state.safetensors")]
    args += ["--sample-every", "0", "--warmup", "1", "--lr", "1e-12", "--steps", "1"]
    assert main(args) == 0
    before = load_file(folder / "state.safetensors")
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(folder / "model" / "tokenizer")
    ids = {w: tok.convert_tokens_to_ids(w + "</w>") for w in ("left", "right", "up", "red")}
    assert main([*args, "--split-tokens", "left/right,up/down"]) == 0
    after = load_file(folder / "state.safetensors")
    rec = [json.loads(x) for x in (folder / "model" / "train_log.jsonl").read_text().splitlines()]
    split = next(r for r in rec if "split_tokens" in r)
    assert split["step"] == 1 and [p["pair"] for p in split["split_tokens"]] == [
        ["left", "right"],
        ["up", "down"],
    ]
    for enc in ("text", "ema_text"):
        key = f"{enc}.embeddings.token_embedding.weight"
        old, new = before[key].float(), after[key].float()
        left, right = new[ids["left"]], new[ids["right"]]
        assert float((left - right).norm()) == pytest.approx(split["distance"], rel=1e-3)
        centre = (old[ids["left"]] + old[ids["right"]]) / 2
        torch.testing.assert_close((left + right) / 2, centre, rtol=0, atol=1e-5)
        torch.testing.assert_close(new[ids["red"]], old[ids["red"]], rtol=0, atol=1e-6)
        assert not torch.allclose(new[ids["up"]], old[ids["up"]], atol=1e-3)
    for bad in ("left", "left/sideways"):
        assert main([*args, "--split-tokens", bad]) == 2
        assert "--split-tokens" in capsys.readouterr().err


def test_the_drift_loss_weighs_only_which_way_things_move():
    """Zero for a perfect prediction and for an error that is the same in every frame; for a
    video played backwards (left for right) it is large, and nothing for a still one."""
    from starvid.shapes.losses import drift_loss

    moving = video_to_latents(render([Group("red", "circle", 1, "right")], seed=1).video[None])
    still = video_to_latents(render([Group("red", "circle", 1, "still")], seed=1).video[None])
    assert float(drift_loss(moving, moving)) == 0.0
    static_error = moving + torch.linspace(-0.5, 0.5, 8)[:, None].expand(8, 8)  # in every frame
    assert float(drift_loss(static_error, moving)) < 1e-12
    backwards = float(drift_loss(moving.flip(2), moving))
    assert backwards > 1e-3, backwards
    assert float(drift_loss(still.flip(2), still)) < 1e-12
    # up for down counts as much as left for right
    up = video_to_latents(render([Group("red", "circle", 1, "up")], seed=1).video[None])
    assert float(drift_loss(up.flip(2), up)) == pytest.approx(backwards, rel=0.5)


def _load_benchmark():
    """The benchmark script as module ``shapes_eval`` (importable by its worker processes)."""
    import importlib
    import sys

    bench_dir = str(Path(__file__).resolve().parents[1] / "benchmarks")
    if bench_dir not in sys.path:
        sys.path.insert(0, bench_dir)
    return importlib.import_module("shapes_eval")


def test_training_rejects_bad_options(capsys):
    assert main(["--aux-roles", "colour"]) == 2
    assert "aux-roles" in capsys.readouterr().err


@pytest.mark.parametrize("prediction", ["sample", "v_prediction"])
def test_sampler_matches_the_training_schedule(scenes, prediction):
    """A model predicting the true x0 (or velocity) of one video makes DDIM sampling return it."""
    from types import SimpleNamespace

    from starvid.shapes import model as M
    from starvid.shapes.monitor import sample_videos

    cfg = M.ShapesModelConfig(prediction=prediction)
    x0 = video_to_latents(scenes[0].video[None])
    alphas = M.build_train_scheduler().alphas_cumprod

    class Oracle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, t, encoder_hidden_states=None):
            a = alphas[int(t)]
            target = x0.expand_as(x)
            if prediction == "sample":
                return SimpleNamespace(sample=target)
            eps = (x - a.sqrt() * target) / (1 - a).sqrt()
            return SimpleNamespace(sample=a.sqrt() * eps - (1 - a).sqrt() * target)

    tok = M.build_tokenizer()
    text = M.build_text_encoder(tok, cfg)
    out = sample_videos(Oracle(), text, tok, ["a red circle moving left"], cfg, steps=10)
    assert np.abs(out[0].astype(int) - scenes[0].video.astype(int)).max() <= 2


def test_x0_loss_is_the_velocity_loss_of_the_implied_velocity():
    from starvid.shapes.losses import denoising_loss

    g = torch.Generator().manual_seed(0)
    x0, noise, pred = (torch.randn(4, 48, 2, 8, 8, generator=g) for _ in range(3))
    a = torch.tensor([0.1, 0.5, 0.9, 0.99]).view(-1, 1, 1, 1, 1)
    xt = a.sqrt() * x0 + (1 - a).sqrt() * noise

    def velocity(x0_hat):
        eps_hat = (xt - a.sqrt() * x0_hat) / (1 - a).sqrt()
        return a.sqrt() * eps_hat - (1 - a).sqrt() * x0_hat

    v_loss = denoising_loss(velocity(pred), x0, noise, a, "v_prediction", 5.0)
    x_loss = denoising_loss(pred, x0, noise, a, "sample", 1e9)  # unclipped
    assert torch.allclose(v_loss, x_loss, rtol=1e-4)
    # clipping lowers the weight of the nearly clean sample (1 / (1 - 0.99) = 100 > 5) only
    clipped = denoising_loss(pred, x0, noise, a, "sample", 5.0)
    assert clipped < x_loss
    assert denoising_loss(x0, x0, noise, a, "sample", 5.0) == 0


def test_early_stop_keeps_the_shapes_scores():
    """Issue 8's quality guard on the shipped shapes model: stopping the U-Net after the last
    recorded layer during gradient iterations gives the same videos, so the same scores, as the
    full forward (the slower reference)."""
    from starvid.backbones import load_backbone
    from starvid.pipeline import generate
    from starvid.settings import make_settings

    bench = _load_benchmark()
    bb = load_backbone("shapes", device="cpu")
    cfg = WorldConfig()
    for groups in sample_eval_groups(2, seed=3, cfg=cfg):
        parsed = parsed_caption(groups)
        plan = validate_plan(bench.world_plan(groups, parsed, 0, cfg))
        videos = []
        for stop_early in (True, False):
            s = make_settings({**bench.DEFAULT_SETTINGS, "steps": 8, "stop_early": stop_early})
            res = generate(bb, parsed, plan, s.resolve(bb), guided=True)
            videos.append(res.frames)
        assert np.abs(videos[0].astype(int) - videos[1].astype(int)).max() <= 1
        scores = [score_video(v, groups, cfg).to_dict() for v in videos]
        assert scores[0] == scores[1]


def test_learning_rate_warms_up_and_anneals():
    from starvid.shapes.train import build_parser, learning_rate

    plain = build_parser().parse_args(["--lr", "1e-3", "--warmup", "10"])
    assert learning_rate(plain, 0, 0.0) == pytest.approx(1e-4)
    assert learning_rate(plain, 500, 0.9) == pytest.approx(1e-3)  # no decay unless asked
    ann = build_parser().parse_args(["--lr", "1e-3", "--warmup", "10", "--anneal-to", "1e-4"])
    rates = [learning_rate(ann, 500, p) for p in (0.0, 0.25, 0.5, 1.0)]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-4)
    assert rates[2] == pytest.approx(5.5e-4) and all(
        a > b for a, b in zip(rates, rates[1:], strict=False)
    )


def test_words_outside_the_shapes_world_are_flagged():
    from starvid.backbones import load_backbone, vocabulary_warnings
    from starvid.parsing import parse_prompt
    from starvid.run import execute, prepare_run
    from starvid.settings import make_settings

    bb = load_backbone("shapes", device="cpu")
    assert bb.vocabulary == frozenset(VOCAB)
    assert vocabulary_warnings("Two red circles moving left and a blue square jumping", bb) == []
    parsed = parse_prompt("a red circle and a cat jumping")
    res = execute(prepare_run(parsed, bb, "shapes", make_settings({"steps": 2})), bb)
    warn = [w for w in res.report.warnings if "new to it" in w]
    assert len(warn) == 1 and warn[0].endswith("new to it: cat")
    assert res.guided.frames.shape == (8, 32, 32, 3)  # it still runs
    assert vocabulary_warnings("a cat", load_backbone("tiny", device="cpu")) == []


def test_quick_benchmark_on_the_shipped_model(capsys, tmp_path):
    """The issue's JSON contract, from the shipped weights (a short --quick run); the rows it
    saves compare two settings pairwise."""
    bench = _load_benchmark()
    argv = ["--quick", "--n", "3", "--steps", "8", "--threads", "1", "--json", "--grid", ""]
    assert bench.main([*argv, "--rows", str(tmp_path / "a.jsonl")]) == 0
    table = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # StarVid with no gradient iterations is the baseline, video for video: so B - A here is
    # baseline - StarVid of the first run
    unguided = ["--set", "iterations=0", "--rows", str(tmp_path / "b.jsonl")]
    assert bench.main([*argv, *unguided]) == 0
    capsys.readouterr()
    assert bench.main(["--compare", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]) == 0
    assert "B - A" in capsys.readouterr().out
    compare = ["--compare", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), "--json"]
    assert bench.main(compare) == 0
    paired = json.loads(capsys.readouterr().out)
    assert paired["baseline"] == table["starvid"] and paired["starvid"] == table["baseline"]
    for c, d in table["difference"].items():
        assert paired["difference"][c]["mean"] == pytest.approx(-d["mean"])
    (tmp_path / "c.jsonl").write_text(
        "".join((tmp_path / "a.jsonl").read_text().splitlines(keepends=True)[:2])
    )
    assert bench.main(["--compare", str(tmp_path / "a.jsonl"), str(tmp_path / "c.jsonl")]) == 2
    assert "different videos (2 shared, 3 and 2" in capsys.readouterr().err
    assert table["n_videos"] == 3
    # guidance helps on the shipped model even in this short run
    assert sum(table["starvid"].values()) > sum(table["baseline"].values()), table
    for arm in ("baseline", "starvid"):
        assert set(table[arm]) == {"numeracy", "attribute", "motion", "action_binding", "all"}
        assert all(0.0 <= r <= 1.0 for r in table[arm].values())
    assert set(table["difference"]["numeracy"]) == {"mean", "ci95"}
    by_count = table["diagnosis"]["count_right_by_count"]
    assert sum(row["subjects"] for row in by_count.values()) == 2 * 3  # two subjects a caption
    assert set(by_count) <= {"1", "2", "3", "4"}
    for row in [*by_count.values(), table["diagnosis"]["videos_with_extra_objects"]]:
        assert 0.0 <= row["baseline"] <= 1.0 and 0.0 <= row["starvid"] <= 1.0
    # what each subject was seen doing, by what it was told: the right motion is the motion
    # category (every video has two subjects, so its motion score is their mean)
    seen = table["diagnosis"]["motion_seen_by_asked"]
    assert sum(row["subjects"] for row in seen.values()) == 2 * 3
    for arm in ("baseline", "starvid"):
        assert all(sum(row[arm].values()) == pytest.approx(1.0) for row in seen.values())
        assert all(set(row[arm]) <= {*MOTIONS, "none", "mixed"} for row in seen.values())
        right = sum(row["subjects"] * row[arm].get(asked, 0.0) for asked, row in seen.items())
        assert right / 6 == pytest.approx(table[arm]["motion"]), (arm, seen)


def test_benchmark_settings_are_the_apps_shapes_defaults():
    """What the benchmark measures is what a user of the default backbone gets."""
    from starvid.attention import cross_attention_layers, select_layers
    from starvid.backbones import load_backbone
    from starvid.settings import make_settings

    bench = _load_benchmark()
    bb = load_backbone("shapes", device="cpu")
    app = make_settings({}).resolve(bb).model_dump()
    assert {k: app[k] for k in bench.DEFAULT_SETTINGS} == bench.DEFAULT_SETTINGS
    # the default layers: the 8x8 down layer among them, and the forward can still stop early
    chosen = select_layers(bb.unet, app["record_layers"])
    every = cross_attention_layers(bb.unet)
    assert chosen[0] == every[0].name and chosen[-1] != every[-1].name
    assert bench.parse_settings(["step_size=0.05", "distance=cosine"]) == {
        "step_size": 0.05,
        "distance": "cosine",
    }
    from starvid.errors import StarVidError

    for bad in (["step_size"], ["step_size=-1"], ["no_such=1"]):
        with pytest.raises(StarVidError):
            bench.parse_settings(bad)


def test_benchmark_refuses_a_grid_it_cannot_write_before_running(capsys):
    """The grid is written after the whole run: a path OpenCV has no writer for is refused at
    once (it crashed with a traceback at the end of a long run)."""
    bench = _load_benchmark()
    assert bench.main(["--quick", "--grid", "''"]) == 2
    err = capsys.readouterr().err
    assert err == "error: --grid wants a .png or .jpg path ('' to skip), got \"''\"\n"


def test_swap_test_reads_whether_motions_follow_their_verbs(capsys):
    """The swap benchmark (issue 24): each subject's outcome from its motions in a caption and
    in the caption with the two motions swapped, and a short run on the shipped model."""
    import importlib
    import json
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    swap = importlib.import_module("motion_swap")
    own = ("left", "jump")  # its verb in the caption, then in the swapped caption
    assert swap.swap_outcome(own, ({"left"}, {"jump"})) == "follows"
    assert swap.swap_outcome(own, ({"left"}, {"left"})) == "one"
    assert swap.swap_outcome(own, ({"up"}, {"jump"})) == "one"
    assert swap.swap_outcome(own, ({"up"}, {"up"})) == "fixed"
    assert swap.swap_outcome(own, (set(), set())) == "fixed"  # not seen in either
    assert swap.swap_outcome(own, ({"jump"}, {"left"})) == "neither"  # each the other's
    assert swap.swap_outcome(own, ({"left", "up"}, {"jump"})) == "one"  # one object astray
    captions = swap.swap_captions(3, 1)
    for a, b in captions:
        assert a.motion != b.motion and "still" not in (a.motion, b.motion)
    assert swap.main(["--n", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["subjects"] == 4 and len(result["rows"]) == 2
    assert sum(result["shares"].values()) == pytest.approx(1.0)
    assert all(o in swap.OUTCOMES for row in result["rows"] for o in row["outcomes"])
    assert swap.main(["--n", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# -- the guidance controls on the shipped model (issue 15) ------------------------------------


def _guided_runs(settings_list, captions=3):
    """Guided runs of a few held-out captions with oracle plans, one per settings dict."""
    from starvid.backbones import load_backbone
    from starvid.pipeline import generate
    from starvid.settings import make_settings

    bench = _load_benchmark()
    bb = load_backbone("shapes", device="cpu")
    cfg = WorldConfig()
    out = []
    for groups in sample_eval_groups(captions, seed=5, cfg=cfg):
        parsed = parsed_caption(groups)
        plan = validate_plan(bench.world_plan(groups, parsed, 0, cfg))
        runs = []
        for extra in settings_list:
            s = make_settings({"steps": 8, "guidance_steps": 2, **extra}).resolve(bb)
            runs.append(generate(bb, parsed, plan, s))
        out.append((parsed, runs))
    return out


def _verb_own_kl(parsed, maps) -> float:
    """Mean KL(verb map || its own noun's map) over verbs and frames."""
    import torch

    from starvid.guidance import distribution, map_distance

    values = []
    for s in parsed.subjects:
        noun = distribution(torch.from_numpy(maps[s.head.text]).double())
        for v in s.verbs:
            verb = distribution(torch.from_numpy(maps[v.text]).double())
            values.append(float(map_distance(verb, noun, "kl").mean()))
    return float(np.mean(values))


def test_a_larger_spatial_weight_pulls_harder():
    """Each weight scales its own term's pull (normalize_grad "per_term"): the report says so
    by value, and the nouns' in-box share over the window rises with the weight."""
    weights = (0.05, 1.0)
    runs = _guided_runs([{"spatial_weight": w, "syntax_weight": 0.0} for w in weights])
    for _, (light, strong) in runs:
        for run, w in ((light, weights[0]), (strong, weights[1])):
            first = [r for r in run.losses if r["iteration"] == 0]
            assert first[0]["spatial_pull"] == pytest.approx(w, rel=1e-4)
            # later steps pull with the weight too, or less where the spatial gradient is under
            # a tenth of the (unweighted) syntax one's (`term_normalizers`' floor)
            assert all(r["spatial_pull"] <= w * (1 + 1e-4) for r in first)
            assert all(r["syntax_pull"] == 0.0 and r["syntax"] == 0.0 for r in first)
            # every update of a step has its first update's size: the later iterations hold
            # it, though the spatial term (and its gradient) shrinks as it is met
            assert len(run.losses) == 2 * 3
            for r in run.losses:
                pull = first[r["step"]]["spatial_pull"]
                assert r["update_size"] == pytest.approx(pull, rel=1e-3)
    light = np.mean([np.nanmean(r[0].inbox_share) for _, r in runs])
    strong = np.mean([np.nanmean(r[1].inbox_share) for _, r in runs])
    # on the shipped model: 0.24 -> 0.36 (from weight 0.25 up it levels off in these short runs)
    assert strong > light + 0.08, (light, strong)


def test_a_larger_syntax_weight_brings_verbs_to_their_nouns():
    """Issue 24, on the shipped model (round 7, which follows motion words): its verbs are not
    pre-bound by training, so at the default temperature the syntax term acts; the syntax term
    alone, weight 0 -> 3, leaves the verbs closer to their own nouns."""
    weights = (0.0, 0.3, 3.0)
    runs = _guided_runs([{"spatial_weight": 0.0, "syntax_weight": w} for w in weights])
    kl = np.array([[_verb_own_kl(p, r.maps_window) for r in rs] for p, rs in runs])
    # on average the verbs end nearer their nouns at weight 3 than without the term, and so do
    # most captions' (step 72,997: 4.80 -> 4.01, one caption of three the other way)
    assert kl[:, -1].mean() < 0.9 * kl[:, 0].mean(), kl
    assert (kl[:, -1] < kl[:, 0]).sum() >= 2, kl
    for _, rs in runs:
        first = [row for row in rs[1].losses if row["iteration"] == 0]
        assert first[0]["syntax_pull"] == pytest.approx(0.3, rel=1e-3)  # acting, not saturated
