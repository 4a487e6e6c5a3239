"""StarVid on AnimateDiff: a tiny random-weight SD U-Net + motion adapter on the CPU, and the
full-size model sized on the meta device."""

from __future__ import annotations

import pytest
import torch
from diffusers import DPMSolverMultistepScheduler, UNetMotionModel
from tiny_animatediff import save_sd_and_adapter, save_tiny_animatediff

from starvid.backbones import BACKBONES, describe_backbones, load_backbone
from starvid.parsing import parse_prompt
from starvid.pipelines import StarVidAnimateDiffPipeline
from starvid.planning import heuristic_plan

PROMPT = "two cats walking to the left and a dog jumping on the right"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_animatediff(tmp_path_factory.mktemp("animatediff") / "tiny")


@pytest.fixture(scope="module")
def pipe(folder):
    return StarVidAnimateDiffPipeline.from_pretrained(folder)


@pytest.fixture(scope="module")
def runs(pipe):
    parsed = parse_prompt(PROMPT)
    plan = heuristic_plan(parsed, frames=pipe.defaults.frames, seed=0)
    return pipe(parsed, plan, guided=True), pipe(parsed, plan, guided=False)


def test_the_recorder_reads_the_spatial_cross_attention_only(pipe, runs):
    """The motion modules' attention is temporal self-attention: never recorded."""
    assert isinstance(pipe.unet, UNetMotionModel)
    from starvid.attention import cross_attention_layers

    names = [layer.name for layer in cross_attention_layers(pipe.unet)]
    assert names and all(".attentions." in n and n.endswith("attn2") for n in names)
    motion = [
        m for n, m in pipe.unet.named_modules() if "motion_modules" in n and n.endswith("attn1")
    ]
    assert motion and not any(m.is_cross_attention for m in motion)
    guided, _ = runs
    assert guided.maps["cats"].shape == (8, 8, 8)  # frames, 16x16 latents halved once


def test_guidance_raises_every_objects_inbox_share(runs):
    guided, base = runs
    g, b = guided.inbox_share.mean(1), base.inbox_share.mean(1)
    assert guided.frames.shape == (8, 64, 64, 3) and guided.frames.dtype.name == "uint8"
    # measured: guided 0.18 / 0.24 / 0.15 against 0.08 / 0.09 / 0.09
    assert (g > b + 0.04).all() and (g > 1.4 * b).all(), (g, b)
    assert guided.losses and not guided.warnings


def test_a_folder_loads_as_a_backbone_and_takes_another_scheduler(folder):
    bb = load_backbone(str(folder), device="cpu", cache=False)
    assert isinstance(bb, StarVidAnimateDiffPipeline) and bb.defaults.frames == 8
    bb.scheduler = DPMSolverMultistepScheduler.from_config(bb.scheduler.config)
    out = bb(PROMPT, num_inference_steps=3, num_frames=4, iterations=1)
    assert out.frames.shape == (4, 64, 64, 3) and len(out.losses) == 1


def test_full_size_guided_step_fits_24_gb_only_with_checkpointing():
    """SD 1.5 + motion adapter v1-5-2 at 512x512x16 in bf16, on the meta device: the weights and
    one gradient iteration's activations, with and without recomputing layers."""
    from starvid.pipeline import iteration_activation_bytes
    from starvid.settings import make_settings

    bb = load_backbone("animatediff", device="meta", dtype=torch.bfloat16, random_weights=True)
    params = bb.info()["params"]
    assert 1.30e9 < params["unet"] < 1.32e9  # 860 M of SD 1.5 + 453 M of motion modules
    weights = sum(params.values()) * 2
    parsed = parse_prompt(PROMPT)
    peak = {}
    for checkpointing in (False, True):
        s = make_settings({"checkpointing": checkpointing}).resolve(bb)
        assert (s.height, s.width, s.frames) == (512, 512, 16)
        plan = heuristic_plan(parsed, frames=s.frames, seed=0)
        peak[checkpointing] = weights + iteration_activation_bytes(bb, parsed, plan, s)
    # measured: 35.5 GiB without, 3.2 GiB with (weights 2.8 GiB; activations 32.7 and 0.34 GiB)
    assert peak[False] > 24 * 2**30 > 4 * peak[True]
    assert BACKBONES["animatediff"].defaults.checkpointing


def test_the_registry_and_the_model_menu_list_animatediff():
    from starvid.ui.text import backbone_label

    row = next(r for r in describe_backbones() if r["name"] == "animatediff")
    assert row["needs_gpu"] and row["random_weights"]
    assert row["download_gb"] == 3.0 and not row["available_offline"]
    assert (row["defaults"]["width"], row["defaults"]["frames"]) == (512, 16)
    assert backbone_label(row) == "animatediff · needs a GPU · 3 GB download"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The tiny model as AnimateDiff is published: an SD checkpoint and a motion adapter."""
    return save_sd_and_adapter(tmp_path_factory.mktemp("published"))


def test_an_sd_checkpoint_and_a_motion_adapter_load_as_in_diffusers(published):
    from diffusers import MotionAdapter

    sd, adapter = published
    pipe = StarVidAnimateDiffPipeline.from_pretrained(
        sd, motion_adapter=MotionAdapter.from_pretrained(adapter)
    )
    assert isinstance(pipe.unet, UNetMotionModel)
    out = pipe(PROMPT, num_frames=4, num_inference_steps=3, height=64, width=64, iterations=1)
    assert out.frames.shape == (4, 64, 64, 3) and len(out.losses) == 1


def test_the_registry_entry_loads_both_repos_from_the_hub_cache(published, tmp_path, monkeypatch):
    import shutil

    from huggingface_hub import constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    spec = BACKBONES["animatediff"]
    for repo, folder in ((spec.source, published[0]), (spec.adapter, published[1])):
        repo_dir = tmp_path / "hub" / ("models--" + repo.replace("/", "--"))
        (repo_dir / "refs").mkdir(parents=True)
        (repo_dir / "refs" / "main").write_text(commit)
        shutil.copytree(folder, repo_dir / "snapshots" / commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    row = next(r for r in describe_backbones() if r["name"] == "animatediff")
    assert row["available_offline"] and row["download_gb"] == 0.0
    bb = load_backbone("animatediff", device="cpu", cache=False)
    assert isinstance(bb, StarVidAnimateDiffPipeline) and bb.motion_adapter is None
    assert bb.scheduler.config.beta_schedule == "linear"  # the adapter's training schedule
    assert bb.defaults == spec.defaults
