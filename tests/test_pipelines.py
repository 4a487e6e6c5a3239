"""``StarVidPipeline``: loads the shapes folder with ``from_pretrained``, reproduces the engine it
replaced frame for frame, and offloads, slices and swaps schedulers as diffusers pipelines do."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from starvid.backbones import BACKBONES
from starvid.pipelines import StarVidPipeline
from starvid.pixel_vae import PixelShuffleVAE
from starvid.plan import Plan
from starvid.settings import GenerationSettings

# Made by the engine before the pipelines (commit e497dff: pipeline.generate, _Loop, Guidance)
# with prepare_run/execute, the shapes defaults, seed 3, baseline too, on one thread: a run takes
# the cores that are free, and another thread count changes the last bits of the floats.
REFERENCE = Path(__file__).parent / "data" / "shapes_engine_reference.npz"
PROMPT = "two red circles moving left and a blue square jumping"


@pytest.fixture(scope="module")
def pipe():
    return StarVidPipeline.from_pretrained("assets/shapes")


@pytest.fixture(scope="module")
def ref():
    data = np.load(REFERENCE)
    return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def runs(pipe, ref):
    plan = Plan.model_validate_json(ref["plan"].tobytes().decode())
    settings = GenerationSettings(seed=3)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STARVID_THREADS", "1")  # the reference's thread count, on a quiet machine too
        return {
            "guided": pipe(PROMPT, plan, settings, guided=True),
            "baseline": pipe(PROMPT, plan, settings, guided=False),
        }


def test_the_shapes_folder_loads_with_from_pretrained(pipe):
    assert isinstance(pipe.vae, PixelShuffleVAE) and pipe.vae_scale_factor == 4
    assert pipe.dtype == torch.float32  # not the checkpoint's fp16
    # its defaults and vocabulary come from its own model_index.json
    assert pipe.defaults == BACKBONES["shapes"].defaults
    assert {"circles", "jumping", "yellow"} <= pipe.vocabulary


@pytest.mark.parametrize("name", ["guided", "baseline"])
def test_the_pipeline_reproduces_the_engine_it_replaced(runs, ref, name):
    out = runs[name]
    np.testing.assert_array_equal(out.frames, ref[f"{name}/frames"])
    for key in ("inbox_share", "inbox_share_final"):
        np.testing.assert_allclose(getattr(out, key), ref[f"{name}/{key}"], atol=1e-6)
    for word, m in out.maps.items():
        np.testing.assert_allclose(m, ref[f"{name}/maps/{word}"], atol=1e-6)
    if name == "guided":
        totals = [row["total"] for row in out.losses]
        np.testing.assert_allclose(totals, ref["guided/loss_total"], rtol=1e-5, atol=1e-7)


def test_guided_beats_the_same_seed_baseline_in_box(runs):
    g = runs["guided"].inbox_share.mean(1)
    b = runs["baseline"].inbox_share.mean(1)
    # measured: 0.32 / 0.45 / 0.97 against 0.00 / 0.34 / 0.00 (the shipped model puts a share
    # of one subject in its box by itself)
    assert (g > b + 0.08).all() and (g - b).mean() > 0.4, (g, b)


def test_the_engine_returns_its_labels_and_what_they_name(runs):
    assert runs["guided"].labels == {
        "circles": {"kind": "noun", "subject": 0},
        "moving": {"kind": "verb", "subject": 0},
        "square": {"kind": "noun", "subject": 1},
        "jumping": {"kind": "verb", "subject": 1},
    }


def test_offload_slicing_and_a_scheduler_swap_work_as_in_diffusers(bb):
    """On the tiny backbone (an AutoencoderKL): the same frames with model offloading hooks
    and VAE slicing; another scheduler runs and changes the video."""
    kw = dict(num_inference_steps=4, num_frames=4, iterations=1, seed=1)
    plain = bb(PROMPT, **kw)
    parts = (bb.vae, bb.text_encoder, bb.tokenizer, bb.unet, bb.scheduler)
    pipe = StarVidPipeline(*parts, starvid_defaults=asdict(bb.defaults))
    pipe.vae.enable_slicing()
    pipe.enable_model_cpu_offload(device="cpu")  # accelerate's hooks, as on a GPU box
    try:
        hooked = pipe(PROMPT, **kw)
    finally:
        pipe.remove_all_hooks()
        pipe.vae.disable_slicing()
    # slicing decodes frame by frame: the same up to rounding (measured: 2 of 49,152 values off
    # by 1)
    diff = np.abs(hooked.frames.astype(int) - plain.frames)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    np.testing.assert_allclose(hooked.inbox_share, plain.inbox_share, atol=1e-6)
    assert type(bb.scheduler).__name__ == "DPMSolverMultistepScheduler"  # the registry's
    pipe.scheduler = DDIMScheduler.from_config(bb.scheduler.config)
    other = pipe(PROMPT, **kw)
    assert other.frames.shape == plain.frames.shape
    assert not np.array_equal(other.frames, plain.frames)


def frame_position_blocks(unet) -> int:
    """How many of the U-Net's temporal attention blocks add frame positions."""
    from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel

    temporal = [m for m in unet.modules() if isinstance(m, TransformerTemporalModel)]
    return sum(b.pos_embed is not None for m in temporal for b in m.transformer_blocks)


def test_from_pretrained_gives_the_unet_the_frame_positions_it_was_trained_with(pipe):
    # the shipped model was trained with them (model_index.json: frame_positions); without them
    # it draws other videos (the engine reference above was made with them)
    assert pipe.config.frame_positions == 32
    assert frame_position_blocks(pipe.unet) == 8  # every temporal block of the shapes U-Net


def test_save_pretrained_round_trip_keeps_the_defaults_and_vocabulary(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "copy", safe_serialization=True)
    again = StarVidPipeline.from_pretrained(tmp_path / "copy")
    assert isinstance(again.vae, PixelShuffleVAE)
    assert again.defaults == pipe.defaults and again.vocabulary == pipe.vocabulary
    assert frame_position_blocks(again.unet) == 8
    assert not list((tmp_path / "copy").rglob("*.bin"))
