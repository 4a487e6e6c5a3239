"""The guided denoising loop, the run report and ``python -m starvid generate`` (tiny, CPU)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from starvid.attention import RecordingAttnProcessor
from starvid.cli import main
from starvid.export import load_maps, read_video
from starvid.parsing import parse_prompt
from starvid.pipeline import (
    Cancelled,
    generate,
    iteration_activation_bytes,
    make_settings,
    run_generation,
)
from starvid.plan import load_plan
from starvid.planning import heuristic_plan

PROMPT = "two cats walking to the left and a dog jumping on the right"
# The run report's keys that external checks rely on (design notes, section 2).
REPORT_KEYS = (
    "prompt",
    "backbone",
    "seed",
    "settings",
    "plan",
    "losses",
    "objects",
    "timing_s",
    "peak_memory_mb",
    "warnings",
)


@pytest.fixture(scope="module")
def run(bb):
    return run_generation(PROMPT, backbone=bb, baseline=True)


def test_guidance_raises_every_objects_inbox_share(run):
    assert run.baseline is not None
    ids = [o.id for o in run.plan.objects]
    assert ids == ["cat-1", "cat-2", "dog-1"]
    g = run.guided.inbox_share.mean(1)
    b = run.baseline.inbox_share.mean(1)
    for k, obj in enumerate(ids):
        assert g[k] > b[k] + 0.04, (obj, g[k], b[k])
        assert g[k] > 1.4 * b[k], (obj, g[k], b[k])
    # what persists into the last steps also leans the guided way on average
    assert run.guided.inbox_share_final.mean() > run.baseline.inbox_share_final.mean()


def test_each_of_three_instances_gets_its_share(bb):
    prompt = "three balloons floating up"
    parsed = parse_prompt(prompt)
    plan = heuristic_plan(parsed, frames=bb.defaults.frames, seed=1)
    assert [o.noun for o in plan.objects] == ["balloon"] * 3
    base = generate(bb, prompt, plan, parsed, {"seed": 1}, guided=False)
    guided = generate(bb, prompt, plan, parsed, {"seed": 1}, guided=True)
    g, b = guided.inbox_share.mean(1), base.inbox_share.mean(1)
    assert (g > b + 0.03).all() and (g > 1.4 * b).all(), (g, b)


def test_stopping_the_forward_early_keeps_the_result(run, bb):
    """The cost saving of issue 8 must not change quality: a full U-Net forward in every
    gradient iteration (the slower reference) gives the same latents, shares and losses."""
    full = generate(bb, PROMPT, run.plan, run.parsed, {"stop_early": False}, guided=True)
    fast = run.guided
    np.testing.assert_allclose(full.inbox_share, fast.inbox_share, atol=1e-4)
    np.testing.assert_allclose(full.inbox_share_final, fast.inbox_share_final, atol=1e-4)
    assert [r["total"] for r in full.losses] == pytest.approx(
        [r["total"] for r in fast.losses], rel=1e-4, abs=1e-6
    )
    assert np.abs(full.frames.astype(int) - fast.frames.astype(int)).max() <= 1


def test_checkpointing_keeps_the_result(run, bb):
    """Recomputing layers in the backward pass (memory saving) gives the same gradients."""
    ck = generate(bb, PROMPT, run.plan, run.parsed, {"checkpointing": True}, guided=True)
    assert ck.settings.checkpointing and not run.guided.settings.checkpointing
    assert [r["total"] for r in ck.losses] == pytest.approx(
        [r["total"] for r in run.guided.losses], rel=1e-5, abs=1e-7
    )
    assert np.abs(ck.frames.astype(int) - run.guided.frames.astype(int)).max() <= 1


@pytest.mark.parametrize("record_layers", ["low", "all"])
def test_checkpointing_keeps_less_for_the_backward_pass(bb, record_layers):
    """Checkpointed layers keep only their inputs (the same gradient: the test above)."""
    plain = iteration_activation_bytes(bb, PROMPT, {"record_layers": record_layers})
    ck = iteration_activation_bytes(
        bb, PROMPT, {"record_layers": record_layers, "checkpointing": True}
    )
    assert 0 < ck < 0.5 * plain, (ck, plain)
    assert "forward" not in vars(bb.unet.down_blocks[0].resnets[0])  # unpatched on exit


def test_full_size_zeroscope_guidance_fits_24_gb_with_checkpointing():
    """Sized on the meta device (no compute): at 576x320x24 in bf16 a gradient iteration keeps
    more than 24 GiB of activations, too much for a 24 GB card; with checkpointing, activations
    and weights together stay far below."""
    import torch

    from starvid.backbones import load_backbone

    bb = load_backbone("zeroscope", device="meta", dtype=torch.bfloat16, random_weights=True)
    assert bb.defaults.checkpointing and (bb.defaults.frames, bb.defaults.width) == (24, 576)
    weights = sum(p.numel() * p.element_size() for p in bb.unet.parameters())
    gib = 2**30
    assert iteration_activation_bytes(bb, PROMPT, {"checkpointing": False}) > 24 * gib
    assert weights + iteration_activation_bytes(bb, PROMPT) < 12 * gib


def test_losses_fall_during_each_guided_step(run):
    s = run.settings
    losses = run.guided.losses
    assert len(losses) == s.guidance_steps * s.iterations
    for step in range(s.guidance_steps):
        rows = [r for r in losses if r["step"] == step]
        assert [r["iteration"] for r in rows] == list(range(s.iterations))
        assert rows[-1]["total"] < rows[0]["total"]
    assert losses[-1]["spatial"] < losses[0]["spatial"]
    assert losses[-1]["syntax"] < losses[0]["syntax"]
    assert run.baseline.losses == []


def test_run_report_follows_the_contract(run, bb):
    rep = json.loads(json.dumps(run.report))  # plain JSON throughout
    for key in REPORT_KEYS:
        assert key in rep, key
    assert rep["prompt"] == PROMPT and rep["backbone"] == "tiny" and rep["seed"] == 0
    assert rep["settings"]["steps"] == bb.defaults.steps
    assert load_plan(rep["plan"]).to_dict() == run.plan.to_dict()
    assert set(rep["losses"][0]) >= {"step", "iteration", "spatial", "syntax", "total"}
    frames = rep["plan"]["frames"]
    for obj, planned in zip(rep["objects"], rep["plan"]["objects"], strict=True):
        assert obj["id"] == planned["id"]
        for key in ("inbox_share", "inbox_share_final"):
            assert set(obj[key]) == {"guided", "baseline"}
            assert all(len(v) == frames and all(0 <= x <= 1 for x in v) for v in obj[key].values())
    assert set(rep["timing_s"]) == {"guided", "baseline"}
    assert all(v > 0 for v in rep["timing_s"].values())
    assert all(v > 0 for v in rep["peak_memory_mb"].values())
    assert isinstance(rep["warnings"], list)
    f = run.guided.frames
    assert f.dtype == np.uint8 and f.shape == (frames, bb.defaults.height, bb.defaults.width, 3)
    assert set(run.guided.maps) == {"cats", "walking", "dog", "jumping"}
    assert all(m.shape[0] == frames for m in run.guided.maps.values())


def test_same_seed_baseline_is_reproducible_and_seed_matters(bb):
    parsed = parse_prompt("a dog running")
    plan = heuristic_plan(parsed, frames=2)
    s = {"steps": 2, "frames": 2}
    a = generate(bb, "a dog running", plan, parsed, s, guided=False)
    b = generate(bb, "a dog running", plan, parsed, s, guided=False)
    c = generate(bb, "a dog running", plan, parsed, s | {"seed": 5}, guided=False)
    assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, c.frames)
    np.testing.assert_allclose(a.inbox_share, b.inbox_share)


def test_progress_and_cancel(bb):
    parsed = parse_prompt(PROMPT)
    plan = heuristic_plan(parsed, frames=2)
    cancel = threading.Event()
    calls = []

    def progress(name, step, total, losses, maps):
        calls.append((name, step, total, losses, {k: v.shape for k, v in maps.items()}))
        if step == 2:
            cancel.set()

    settings = {"steps": 5, "frames": 2, "guidance_steps": 1, "iterations": 1}
    with pytest.raises(Cancelled):
        generate(bb, PROMPT, plan, parsed, settings, progress=progress, cancel=cancel)
    assert [c[1] for c in calls] == [1, 2]  # stopped before the third step
    name, step, total, losses, shapes = calls[0]
    assert name == "guided" and total == 5
    assert set(losses) >= {"spatial", "syntax", "total"}
    assert calls[1][3] is None  # no guidance at step 2
    assert set(shapes) == {"cats", "walking", "dog", "jumping"}
    assert all(s[0] == 2 for s in shapes.values())
    # the U-Net has its own processors back
    assert not any(isinstance(p, RecordingAttnProcessor) for p in bb.unet.attn_processors.values())


def test_settings_validation():
    with pytest.raises(ValueError, match="steps"):
        make_settings(steps=0)
    with pytest.raises(ValueError, match="distance"):
        make_settings(distance="l1")
    assert make_settings({"iterations": 2}, iterations=None).iterations == 2


def test_unset_settings_take_the_backbones_defaults(bb):
    from starvid.backbones import BACKBONES

    s = make_settings().resolve(bb)
    assert (s.steps, s.cfg_scale, s.step_size) == (10, 7.5, 0.3)  # the tiny backbone's
    assert s.guidance_steps == 3  # the first quarter of the steps
    assert make_settings(step_size=0.05, steps=20).resolve(bb).step_size == 0.05
    assert make_settings(steps=20).resolve(bb).guidance_steps == 5
    assert s.record_layers == "low"
    assert make_settings(record_layers="mid").resolve(bb).record_layers == "mid"
    shapes = BACKBONES["shapes"].defaults
    assert (shapes.step_size, shapes.record_layers) == (0.05, "down_blocks.0")


def test_cli_generate_end_to_end(tmp_path, capsys):
    out = tmp_path / "out.mp4"
    rc = main(
        [
            "generate",
            PROMPT,
            "--backbone",
            "tiny",
            "--baseline",
            "--steps",
            "4",
            "--frames",
            "4",
            "--out",
            str(out),
            "--report",
            str(tmp_path / "r.json"),
            "--maps",
            str(tmp_path / "maps.npz"),
        ]
    )
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert read_video(out).shape[0] == 4
    assert read_video(tmp_path / "out.baseline.mp4").shape[0] == 4
    both = read_video(tmp_path / "out.side_by_side.mp4")
    assert both.shape[0] == 4 and both.shape[2] > read_video(out).shape[2]
    rep = json.loads((tmp_path / "r.json").read_text())
    for key in REPORT_KEYS:
        assert key in rep
    assert rep["settings"]["steps"] == 4 and rep["plan"]["frames"] == 4
    assert len(rep["objects"][0]["inbox_share"]["baseline"]) == 4
    maps = load_maps(tmp_path / "maps.npz")
    assert set(maps) == {"cats", "walking", "dog", "jumping"}
    assert "cat-1: in-box attention share guided" in printed.out

    # the report runs again as it was: prompt, backbone, plan, settings and the baseline
    again = tmp_path / "again.mp4"
    rc = main(
        ["generate", "--from-report", str(tmp_path / "r.json"), "--out", str(again)]
        + ["--report", str(tmp_path / "r2.json")]
    )
    assert rc == 0, capsys.readouterr().err
    rep2 = json.loads((tmp_path / "r2.json").read_text())
    for key in ("prompt", "backbone", "settings", "plan"):
        assert rep2[key] == rep[key], key
    np.testing.assert_array_equal(read_video(again), read_video(out))
    np.testing.assert_array_equal(
        read_video(tmp_path / "again.baseline.mp4"), read_video(tmp_path / "out.baseline.mp4")
    )
    # flags override the report
    rc = main(
        ["generate", "--from-report", str(tmp_path / "r.json"), "--seed", "5", "--steps", "2"]
        + ["--out", str(tmp_path / "o2.mp4"), "--report", str(tmp_path / "r3.json")]
    )
    assert rc == 0
    rep3 = json.loads((tmp_path / "r3.json").read_text())
    assert (rep3["seed"], rep3["settings"]["steps"], rep3["plan"]) == (5, 2, rep["plan"])


def _bad(args, capsys) -> str:
    rc = main(["generate", "a dog running", "--steps", "2", "--frames", "2", *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    return err


def test_cli_generate_bad_input(tmp_path, capsys):
    out = ["--out", str(tmp_path / "o.mp4")]
    assert "cannot read plan file" in _bad(["--plan", str(tmp_path / "none.json"), *out], capsys)
    assert "cannot read report" in _bad(["--from-report", str(tmp_path / "no.json"), *out], capsys)
    not_report = tmp_path / "plan.json"
    not_report.write_text('{"frames": 2, "objects": []}')
    assert "not a run report" in _bad(["--from-report", str(not_report), *out], capsys)
    rc = main(["generate", "--out", str(tmp_path / "o.mp4")])
    assert rc == 2 and "needs a prompt" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"frames": 2, "objects": []}')
    assert "invalid plan" in _bad(["--plan", str(bad), *out], capsys)
    other = tmp_path / "cat.json"
    other.write_text(
        json.dumps(
            {
                "frames": 2,
                "objects": [
                    {
                        "id": "cat-1",
                        "noun": "cat",
                        "subject": 0,
                        "boxes": [[0.1, 0.1, 0.4, 0.4]] * 2,
                    }
                ],
            }
        )
    )
    assert "'cat'" in _bad(["--plan", str(other), *out], capsys)
    assert "steps" in _bad(["--steps", "0", *out], capsys)
    assert "invalid int" in _bad(["--frames", "two", *out], capsys)
    assert ".mp4" in _bad(["--out", str(tmp_path / "o.avi")], capsys)
    assert not (tmp_path / "o.mp4").exists()
