"""Token indexing and cross-attention recording on the shipped tiny backbone (CPU, offline)."""

from __future__ import annotations

import warnings

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor

from starvid.attention import (
    AttentionStore,
    RecordingAttnProcessor,
    StopForward,
    cross_attention_layers,
    install_recorders,
    select_layers,
    token_positions,
)
from starvid.errors import StarVidError
from starvid.heatmaps import trace


def _span(prompt: str, word: str, nth: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(nth + 1):
        start = prompt.index(word, start + 1)
    return start, start + len(word)


def _ids(bb, prompt: str) -> list[int]:
    return bb.tokenizer(prompt, padding="max_length", max_length=77, truncation=True).input_ids


def test_repeated_word_gets_distinct_positions(bb):
    prompt = "a dog and a dog"
    first, second = token_positions(
        bb.tokenizer, prompt, [_span(prompt, "dog", 0), _span(prompt, "dog", 1)]
    )
    assert first and second and first != second
    ids = _ids(bb, prompt)
    assert ids[first[0]] == ids[second[0]]  # same token, two places
    assert first[0] >= 1 and second[0] > first[0]


def test_multi_token_word_gets_all_its_positions(bb):
    prompt = "a hippopotamus eating grass"
    (pos,) = token_positions(bb.tokenizer, prompt, [_span(prompt, "hippopotamus")])
    assert len(pos) >= 2
    assert pos == list(range(pos[0], pos[0] + len(pos)))
    ids = _ids(bb, prompt)
    text = bb.tokenizer.decode([ids[p] for p in pos]).replace(" ", "")
    assert text == "hippopotamus"
    # the next word starts right after the last piece
    (eat,) = token_positions(bb.tokenizer, prompt, [_span(prompt, "eating")])
    assert eat == [pos[-1] + 1]


def test_case_and_punctuation_keep_alignment(bb):
    prompt = "Two CATS, walking; a dog!"
    cats, dog = token_positions(bb.tokenizer, prompt, [_span(prompt, "CATS"), _span(prompt, "dog")])
    ids = _ids(bb, prompt)
    assert bb.tokenizer.decode([ids[p] for p in cats]).strip() == "cats"
    assert bb.tokenizer.decode([ids[p] for p in dog]).strip() == "dog"


def test_truncated_word_gets_empty_list_and_warning(bb):
    prompt = " ".join(["cat"] * 80) + " zebra"
    with pytest.warns(UserWarning, match="zebra"):
        first, last = token_positions(bb.tokenizer, prompt, [(0, 3), _span(prompt, "zebra")])
    assert first == [1]
    assert last == []
    # the last kept content position leaves room for the end token
    (p75,) = token_positions(bb.tokenizer, prompt, [(4 * 74, 4 * 74 + 3)])
    assert p75 == [75]
    with warnings.catch_warnings(record=True):
        (p76,) = token_positions(bb.tokenizer, prompt, [(4 * 75, 4 * 75 + 3)])
    assert p76 == []


def test_span_outside_prompt_is_an_error(bb):
    with pytest.raises(StarVidError):
        token_positions(bb.tokenizer, "a cat", [(3, 99)])


class _NoOffsets:
    """The real tokenizer, minus offset mappings (like a slow Python tokenizer)."""

    def __init__(self, tok):
        self.tok = tok

    def __call__(self, text, **kw):
        if kw.pop("return_offsets_mapping", False):
            raise NotImplementedError
        return self.tok(text, **kw)


def test_retokenization_fallback_matches_offsets(bb):
    prompt = "Three hippopotamuses and a dog and a dog, jumping"
    spans = [
        _span(prompt, "hippopotamuses"),
        _span(prompt, "dog", 0),
        _span(prompt, "dog", 1),
        _span(prompt, "jumping"),
    ]
    fast = token_positions(bb.tokenizer, prompt, spans)
    slow = token_positions(_NoOffsets(bb.tokenizer), prompt, spans)
    assert fast == slow


def test_layers_are_spatial_cross_attention_only(bb):
    names = [layer.name for layer in cross_attention_layers(bb.unet)]
    assert names and all(".attentions." in n and n.endswith("attn2") for n in names)
    assert not any("temp_attentions" in n or "transformer_in" in n for n in names)
    # execution order: down, mid, up
    assert names[0].startswith("down_blocks") and names[-1].startswith("up_blocks")
    assert select_layers(bb.unet, "mid") == ["mid_block.attentions.0.transformer_blocks.0.attn2"]
    assert select_layers(bb.unet, "low") == select_layers(bb.unet, "mid")  # tiny: one level
    assert select_layers(bb.unet, "all") == names
    assert select_layers(bb.unet, "up_blocks.1") == [n for n in names if n.startswith("up")]
    with pytest.raises(StarVidError):
        select_layers(bb.unet, "nowhere")


class _ReferenceProbs(AttnProcessor):
    """diffusers' AttnProcessor, keeping the full probabilities it computes."""

    def __init__(self, sink: dict, name: str):
        self.sink, self.name = sink, name

    def __call__(
        self,
        attn: Attention,
        hidden_states,
        encoder_hidden_states=None,
        attention_mask=None,
        temb=None,
        *args,
        **kwargs,
    ):
        q = attn.head_to_batch_dim(attn.to_q(hidden_states))
        k = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        self.sink[self.name] = attn.get_attention_scores(q, k, None)  # (b*heads, hw, 77)
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb)


def _inputs(bb, prompt: str, frames: int = 3, cfg: bool = True):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, frames, 16, 16, generator=gen)
    ids = bb.tokenizer(
        ["", prompt], padding="max_length", max_length=77, return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        emb = bb.text_encoder(ids)[0]
    if cfg:
        return torch.cat([x, x]), emb
    return x, emb[1:]


def test_recorded_maps_equal_reference_probabilities(bb):
    unet = bb.unet
    prompt = "a hippopotamus and a dog"
    x, emb = _inputs(bb, prompt, frames=3, cfg=True)
    layers = select_layers(unet, "all")
    positions = [2, 3, 4, 7]
    ref: dict = {}
    original = dict(unet.attn_processors)
    procs = {
        k: (
            _ReferenceProbs(ref, k[: -len(".processor")])
            if k[: -len(".processor")] in layers
            else AttnProcessor()
        )
        for k in original
    }
    unet.set_attn_processor(procs)
    try:
        with torch.no_grad():
            ref_out = unet(x, 500, encoder_hidden_states=emb).sample
    finally:
        unet.set_attn_processor(dict(original))  # diffusers pops from the dict
    store = AttentionStore(positions, layers, skip_uncond=True)
    with install_recorders(unet, store), torch.no_grad():
        out = unet(x, 500, encoder_hidden_states=emb).sample
    assert torch.allclose(out, ref_out, atol=1e-4)  # recording does not change the forward
    frames = 3
    for name in layers:
        attn = unet.get_submodule(name)
        p = ref[name]  # (2*frames*heads, hw, 77), unconditional frames first
        p = p.reshape(2 * frames, attn.heads, *p.shape[1:]).mean(1)[frames:]  # cond, head mean
        want = p[..., positions].transpose(1, 2)  # (frames, tokens, hw)
        got = store.maps[name]
        assert got.shape[:2] == (frames, len(positions))
        assert got.shape[2] * got.shape[3] == want.shape[-1]
        assert torch.allclose(got.flatten(2), want, atol=1e-5), name
    # every processor restored
    assert {k: type(v) for k, v in unet.attn_processors.items()} == {
        k: type(v) for k, v in original.items()
    }


def test_grad_flows_and_early_stop_gives_same_maps(bb):
    unet = bb.unet
    x, emb = _inputs(bb, "a cat walking", frames=2, cfg=False)
    layers = select_layers(unet, "mid")
    store = AttentionStore([2, 3], layers, keep_grad=True, stop_early=True)
    z = x.clone().requires_grad_(True)
    with install_recorders(unet, store):
        with pytest.raises(StopForward):
            unet(z, 300, encoder_hidden_states=emb)
        early = store.maps[layers[0]]
        assert early.requires_grad
        (g,) = torch.autograd.grad(early[:, 0].sum(), z)
        assert torch.isfinite(g).all() and g.abs().sum() > 0
        store.stop_early, store.keep_grad = False, False
        with torch.no_grad():
            unet(z, 300, encoder_hidden_states=emb)
        full = store.maps[layers[0]]
    assert not full.requires_grad
    assert torch.allclose(early.detach(), full, atol=1e-6)
    for proc in unet.attn_processors.values():
        assert not isinstance(proc, RecordingAttnProcessor)


def test_trace_gives_per_word_heatmaps(bb):
    prompt = "a dog and a dog chasing a hippopotamus"
    x, emb = _inputs(bb, prompt, frames=4, cfg=True)
    before = dict(bb.unet.attn_processors)
    with trace(
        bb, ["dog", "dog", "hippopotamus"], prompt=prompt, cfg=True, record_layers="all"
    ) as maps:
        with torch.no_grad():
            for t in (900, 500):
                bb.unet(x, t, encoder_hidden_states=emb)
    assert maps.keys() == ["dog", "dog#2", "hippopotamus"]
    d = maps.as_dict()
    for m in d.values():
        assert m.shape == (4, 16, 16)  # frames, finest recorded resolution
        assert (m >= 0).all() and m.sum() > 0
    assert not torch.allclose(d["dog"], d["dog#2"])  # two occurrences, two maps
    assert all(type(v) is type(before[k]) for k, v in bb.unet.attn_processors.items())


def test_trace_around_a_diffusers_pipeline_call(bb):
    """The DAAM-style use: wrap a diffusers text-to-video pipeline's own call (here the
    deprecated TextToVideoSDPipeline built from the shipped tiny model's parts) and read each
    word's heat map afterwards; the pipeline's processors are restored."""
    from diffusers import TextToVideoSDPipeline

    import starvid

    pipe = TextToVideoSDPipeline(
        vae=bb.vae,
        text_encoder=bb.text_encoder,
        tokenizer=bb.tokenizer,
        unet=bb.unet,
        scheduler=bb.new_scheduler(),
    )
    pipe.set_progress_bar_config(disable=True)
    prompt = "a cat walking and a dog jumping"
    before = {k: type(v) for k, v in bb.unet.attn_processors.items()}
    with starvid.trace(pipe, ["cat", "walking", "dog"], prompt, cfg=True) as maps:
        pipe(prompt, num_frames=3, num_inference_steps=2, height=64, width=64, output_type="np")
    d = maps.as_dict()
    assert list(d) == ["cat", "walking", "dog"]
    assert all(m.shape[0] == 3 and float(m.sum()) > 0 for m in d.values())
    assert maps.store.forwards == 2  # one CFG forward a step
    assert {k: type(v) for k, v in bb.unet.attn_processors.items()} == before


def test_a_forward_mode_holds_for_its_block_only():
    from dataclasses import FrozenInstanceError

    from starvid.attention import CFG_PASS, GRADIENT_PASS, RecordSpec

    store = RecordSpec((1, 2), ("down_blocks.0",)).store()
    with store.mode(GRADIENT_PASS):
        assert (store.keep_grad, store.skip_uncond, store.stop_early) == (True, False, True)
        with store.mode(CFG_PASS):
            assert (store.keep_grad, store.skip_uncond, store.stop_early) == (False, True, False)
        assert store.stop_early
    assert (store.keep_grad, store.skip_uncond, store.stop_early) == (False, False, False)
    with pytest.raises(FrozenInstanceError):
        GRADIENT_PASS.keep_grad = False  # type: ignore[misc]
    assert store.spec == RecordSpec((1, 2), ("down_blocks.0",))


def test_trace_and_runs_share_one_accumulator(bb):
    """trace()'s heat map is the mean of each forward's layer-averaged maps, summed by the same
    MapAccumulator a pipeline run keeps its mean maps in."""
    from starvid.attention import MapAccumulator
    from starvid.pipelines.maps import RunMaps

    assert isinstance(RunMaps(4, 1, 0.5, 2).all, MapAccumulator)
    prompt = "a dog running"
    x, emb = _inputs(bb, prompt, frames=2, cfg=False)
    each = []
    with trace(bb, ["dog"], prompt=prompt, record_layers="all") as maps:
        with torch.no_grad():
            for t in (900, 500):
                bb.unet(x, t, encoder_hidden_states=emb)
                each.append(maps.store.layer_mean()[:, 0])
    assert isinstance(maps.store.accumulator, MapAccumulator)
    assert maps.store.accumulator.count == 2
    torch.testing.assert_close(maps["dog"], (each[0] + each[1]) / 2)
