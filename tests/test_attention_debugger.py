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
    for other in ("and", "two", "#0", "<end>"):
        m = rec.word_map(other)
        assert m.shape == noun.shape and np.isfinite(m).all() and m.max() > 0
        # the mean absolute difference is a sizeable part of the noun map's own mean
        assert np.abs(m - noun).mean() > 0.2 * noun.mean(), other


def test_a_colour_words_map_is_its_own_and_sits_with_its_noun(runs):
    # the shapes model was trained to put its colour words on their objects (the aux loss), so a
    # colour's map is near its own noun's and far from the other subject's
    rec = runs[0].attention

    def distance(word, noun):
        return np.abs(rec.word_map(word) - rec.word_map(noun)).mean() / rec.word_map(noun).mean()

    assert distance("red", "circles") < 0.5 * distance("red", "square")
    assert distance("blue", "square") < 0.5 * distance("blue", "circles")


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


# -- views, files, trace -----------------------------------------------------------------------


def test_overlay_opacity_changes_the_drawn_pixels(runs):
    from starvid import attention_views as V

    out = runs[0]
    rec = out.attention
    faint = V.overlay_view(rec, "circles", 3, out.frames, opacity=0.1).image.astype(float)
    strong = V.overlay_view(rec, "circles", 3, out.frames, opacity=0.9).image.astype(float)
    # the left panel (the map over the frame) changes a lot; the map alone does not
    left, right = slice(8, 8 + 256), slice(8 + 260, 8 + 260 + 256)
    assert np.abs(strong[26:282, left] - faint[26:282, left]).mean() > 20
    assert np.abs(strong[26:282, right] - faint[26:282, right]).mean() < 1


def test_every_view_draws_with_its_labels(runs, tmp_path):
    from PIL import Image

    from starvid import attention_views as V

    guided, baseline = runs
    rec = guided.attention
    made = [
        V.overlay_view(rec, "red", 2, guided.frames, layer=rec.layer_names[3]),
        V.steps_view(rec, "and"),
        V.words_view(rec, ["circles", "square"], 2, guided.frames),
        V.layers_view(rec, "circles", 2),
        V.compare_view(rec, baseline.attention, "circles"),
        V.prompt_view(rec, {"circles": [[[0.1, 0.1, 0.6, 0.6]]] * 8}, by="inbox"),
        V.prompt_view(rec, {}, by="entropy"),
        V.settle_view(rec, ["circles", "and"]),
        V.animation_view(rec, "circles", guided.frames),
    ]
    for view in made:
        assert view.image.std() > 10, view.kind  # drew something, not a blank image
        fig = view.figure()
        assert fig.layout.title.text == view.title and fig.data
        path = view.save_png(tmp_path / f"{view.kind}.png")
        assert Image.open(path).size == view.image.shape[1::-1]
    assert made[1].labels[:2] == ["step 0", "step 1"]
    assert made[4].labels == ["guided", "baseline", "difference"]
    assert len(made[3].labels) == 7
    assert len(made[-1].frames) == 8 and len(made[-1].figure().frames) == 8
    gif = made[-1].save_gif(tmp_path / "circles.gif")
    assert Image.open(gif).n_frames == 8


def test_steps_axis_marks_the_guidance_window(runs):
    from starvid import attention_render as R
    from starvid import attention_views as V

    def window_pixels(rec):
        img = V.steps_view(rec, "circles").image
        return int((img == np.array(R.WINDOW_COLOUR, np.uint8)).all(-1).sum())

    assert window_pixels(runs[0].attention) > 100  # guided: 2 of 6 steps marked
    assert window_pixels(runs[1].attention) == 0  # the baseline had no window


def test_run_folder_holds_the_recording_and_reads_it_back(runs, tmp_path):
    from starvid.recording import load_recordings, save_recordings

    guided, baseline = runs
    files = save_recordings({"guided": guided.attention, "baseline": baseline.attention}, tmp_path)
    assert set(files) == {"attention", "attention_meta"}
    back = load_recordings(tmp_path)
    assert set(back) == {"guided", "baseline"}
    for name, out in (("guided", guided), ("baseline", baseline)):
        rec = back[name]
        assert rec.tokens == out.attention.tokens and rec.window == out.attention.window
        np.testing.assert_allclose(rec.word_map("and"), out.attention.word_map("and"), atol=1e-3)
        layer = rec.layer_names[2]
        np.testing.assert_allclose(
            rec.word_map("red", layer), out.attention.word_map("red", layer), atol=1e-3
        )
    assert load_recordings(tmp_path / "nothing") == {}


def test_trace_records_every_token_of_a_plain_diffusers_pipeline(shapes):
    from diffusers import TextToVideoSDPipeline

    from starvid import trace

    pipe = TextToVideoSDPipeline(**shapes.components)
    pipe.set_progress_bar_config(disable=True)
    with trace(pipe, ["circles"], PROMPT, cfg=True, record_all=True) as maps:
        pipe(
            PROMPT,
            num_frames=8,
            height=32,
            width=32,
            num_inference_steps=3,
            guidance_scale=4.0,
            generator=torch.Generator().manual_seed(0),
            output_type="np",
        )
    rec = maps.recording
    assert rec.n_steps == 3 and rec.tokens[-1] == "<end>" and len(rec.layer_names) == 7
    # the per-step maps are the same maps trace averages for its words
    np.testing.assert_allclose(rec.word_map("circles"), maps["circles"].numpy(), atol=5e-4)
    from starvid.attention import RecordingAttnProcessor

    kept = pipe.unet.attn_processors.values()  # the U-Net's own processors are back
    assert not any(isinstance(p, RecordingAttnProcessor) for p in kept)


def test_the_studio_draws_every_view_of_a_runs_recording(runs):
    from starvid.ui.debugger import VIEWS, draw, token_choices
    from starvid.ui.inspect import LiveRun

    guided, baseline = runs
    live = LiveRun(word_subjects={"circles": 0, "moving": 0, "square": 1, "jumping": 1})
    live.recordings = {"guided": guided.attention, "baseline": baseline.attention}
    live.frames = {"guided": guided.frames, "baseline": baseline.frames}
    choice = {"run": "guided", "token": "#6", "layer": "mean", "step": "2", "frame": 1}
    for label, kind in VIEWS:
        if kind == "heads":
            continue  # recorded with full_heads only (the browser test's run)
        view = draw(live, None, choice | {"view": kind, "opacity": 0.5})
        assert view is not None and view.image.std() > 10, label
    assert ("#0 <start>", "#0") in token_choices(guided.attention)
    assert draw(LiveRun(), None, choice | {"view": "overlay", "opacity": 0.5}) is None


def test_trace_records_everything_with_no_words_named(shapes):
    """The README's call: no words, only the full recording (failed before token positions
    were typed as integers: an empty list became a float index)."""
    from diffusers import TextToVideoSDPipeline

    from starvid import trace

    pipe = TextToVideoSDPipeline(**shapes.components)
    pipe.set_progress_bar_config(disable=True)
    with trace(pipe, [], PROMPT, cfg=True, record_all=True) as maps:
        pipe(PROMPT, num_frames=8, height=32, width=32, num_inference_steps=1, output_type="np")
    assert maps.recording.step_maps("#11").shape[:2] == (1, 8)  # (steps, frames, h, w)


def test_each_resolution_is_kept_at_every_step(runs):
    rec = runs[0].attention
    assert rec.level_choices() == ["level:0", "level:1"]
    for level in (0, 1):
        names = [n for n in rec.layer_names if rec.levels[n] == level]
        per_layer = {n: torch.from_numpy(rec.word_map("red", n))[:, None] for n in names}
        averaged = mean_over_layers(per_layer)[:, 0].numpy()
        by_step = rec.step_maps("red", f"level:{level}")
        assert by_step.shape[0] == 6
        np.testing.assert_allclose(by_step.mean(0), averaged, atol=5e-4)
    # steps differ: the maps move during the denoising
    assert np.abs(by_step[0] - by_step[-1]).mean() > 0.05 * by_step.mean()


def test_a_run_folder_written_by_run_generation_holds_the_recording(tmp_path):
    from starvid.parsing import parse_prompt
    from starvid.recording import load_recordings
    from starvid.run import GenerationRequest, run_generation
    from starvid.settings import GenerationSettings

    settings = GenerationSettings(steps=2, record_attention="full")
    request = GenerationRequest(parse_prompt(PROMPT), "shapes", settings, baseline=True)
    result = run_generation(request, tmp_path)
    assert {"attention", "attention_meta"} <= set(result.files)
    back = load_recordings(tmp_path)
    assert set(back) == {"guided", "baseline"} and back["guided"].n_steps == 2
    assert back["guided"].level_choices() == ["level:0", "level:1"]
    assert result.report.settings.record_attention == "full"
