"""Backbone registry and loading: the shipped tiny model, local folders, hub cache, errors."""

from __future__ import annotations

import copy
import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, UNet3DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from starvid import DEFAULT_BACKBONE, backbones, hub
from starvid.backbones import (
    BACKBONES,
    TINY_DIR,
    Backbone,
    list_backbones,
    load_backbone,
    load_backbone_configs,
)
from starvid.errors import StarVidError


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def tiny() -> Backbone:
    return load_backbone("tiny", device="cpu")


def _encode(bb: Backbone, prompt: str) -> tuple[torch.Tensor, list[int]]:
    tok = bb.tokenizer(
        [prompt], padding="max_length", max_length=77, truncation=True, return_tensors="pt"
    )
    with torch.no_grad():
        emb = bb.text_encoder(tok.input_ids.to(bb.device))[0]
    return emb, tok.input_ids[0].tolist()


def test_registry_names_and_defaults():
    assert list_backbones() == ["shapes", "tiny", "zeroscope", "modelscope", "animatediff"]
    assert DEFAULT_BACKBONE == "shapes"
    zs, ms = BACKBONES["zeroscope"], BACKBONES["modelscope"]
    assert zs.source == "cerspense/zeroscope_v2_576w"
    assert (zs.defaults.width, zs.defaults.height, zs.defaults.frames) == (576, 320, 24)
    assert ms.source == "ali-vilab/text-to-video-ms-1.7b"
    assert (ms.defaults.width, ms.defaults.height, ms.defaults.frames) == (256, 256, 16)
    assert ms.defaults.cfg_scale == 9.0
    # ZeroScope's guided run would not fit 24 GB without recomputing layers; the others do
    assert zs.defaults.checkpointing and not ms.defaults.checkpointing
    assert not BACKBONES["shapes"].defaults.checkpointing


def test_tiny_loads_offline_with_real_classes(tiny):
    assert isinstance(tiny.unet, UNet3DConditionModel)
    assert isinstance(tiny.vae, AutoencoderKL)
    assert isinstance(tiny.text_encoder, CLIPTextModel)
    assert isinstance(tiny.tokenizer, CLIPTokenizer)
    assert tiny.device == torch.device("cpu") and tiny.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in tiny.unet.parameters())
    assert not any(p.requires_grad for p in tiny.unet.parameters())
    assert tiny.vae_scale_factor == 4
    assert tiny.unet.config.cross_attention_dim == tiny.text_encoder.config.hidden_size
    assert type(tiny.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert tiny.scheduler.config.algorithm_type == "dpmsolver++"
    fresh = tiny.new_scheduler()
    assert fresh is not tiny.scheduler and type(fresh) is type(tiny.scheduler)
    # Cached per (name, device, dtype).
    assert load_backbone("tiny", device="cpu") is tiny


def test_shapes_is_the_default_and_loads_its_own_vae_and_scheduler():
    from starvid.shapes.model import PixelShuffleVAE, read_training_info

    bb = load_backbone(device="cpu")  # no name: the default
    assert bb.name == "shapes" and isinstance(bb.unet, UNet3DConditionModel)
    assert isinstance(bb.vae, PixelShuffleVAE) and bb.vae_scale_factor == 4
    assert isinstance(bb.text_encoder, CLIPTextModel)
    # the folder's own DDIM (trailing spacing) with the objective the model was trained for
    assert type(bb.scheduler).__name__ == "DDIMScheduler"
    assert bb.scheduler.config.timestep_spacing == "trailing"
    want = read_training_info().get("model", {}).get("prediction") or read_training_info().get(
        "prediction"
    )
    assert bb.scheduler.config.prediction_type == want
    d = bb.defaults
    assert (d.height, d.width, d.frames, d.steps) == (32, 32, 8, 20)
    assert bb.tokenizer.tokenize("two red circles jumping") == [
        "two</w>",
        "red</w>",
        "circles</w>",
        "jumping</w>",
    ]


def test_a_shapes_training_folder_runs_with_the_shapes_defaults(tmp_path):
    """A copy of the shapes model (a training run's folder) gets the shipped model's defaults at
    its trained size, not the guesses for an unknown full-size folder (16 frames, 25 steps)."""
    folder = tmp_path / "run"
    shutil.copytree(BACKBONES["shapes"].local_path(), folder)
    assert load_backbone(str(folder), device="cpu").defaults == BACKBONES["shapes"].defaults
    info = json.loads((folder / "training.json").read_text())
    info["model"]["frames"] = 12
    (folder / "training.json").write_text(json.dumps(info))
    backbones.clear_cache()  # loads are cached by folder
    defaults = load_backbone(str(folder), device="cpu").defaults
    assert (defaults.frames, defaults.height, defaults.record_layers) == (12, 32, "down_blocks.0")


def test_folder_naming_an_unknown_vae_class_is_refused(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(BACKBONES["shapes"].local_path(), folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["vae"] = ["os", "system"]
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(StarVidError, match="unsupported VAE class os.system"):
        load_backbone(str(folder), device="cpu")


def test_tiny_load_is_fast():
    backbones.clear_cache()
    start = time.perf_counter()
    load_backbone("tiny", device="cpu")
    # Well under a second or two on a free core; generous for a shared 2-core machine.
    assert time.perf_counter() - start < 5.0


def test_tiny_assets_are_small_fp16_safetensors():
    files = [f for f in TINY_DIR.rglob("*") if f.is_file()]
    assert sum(f.stat().st_size for f in files) < 12e6
    weights = sorted(
        f.relative_to(TINY_DIR).as_posix() for f in files if f.suffix == ".safetensors"
    )
    assert weights == [
        "text_encoder/model.safetensors",
        "unet/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
    ]
    for f in files:
        assert f.suffix not in (".bin", ".pt", ".ckpt", ".pth")
    from safetensors import safe_open

    with safe_open(TINY_DIR / "unet/diffusion_pytorch_model.safetensors", "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}


def test_tiny_tokenizer_is_real_clip_bpe(tiny):
    assert len(tiny.tokenizer) == 49408
    ids = tiny.tokenizer("a photo of a cat").input_ids
    assert ids == [49406, 320, 1125, 539, 320, 2368, 49407]  # OpenAI CLIP's ids
    # Multi-token words exist (so token indexing must map words to several positions).
    assert len(tiny.tokenizer.tokenize("hippopotamus")) >= 2


def test_tiny_unet_and_vae_forward_shapes(tiny):
    emb, _ = _encode(tiny, "a cat and a dog")
    assert emb.shape == (1, 77, tiny.text_encoder.config.hidden_size)
    d = tiny.defaults
    lat_h, lat_w = d.height // tiny.vae_scale_factor, d.width // tiny.vae_scale_factor
    frames = 4  # any count works; fewer keeps the test quick
    latents = torch.randn(2, 4, frames, lat_h, lat_w, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = tiny.unet(latents, 500, encoder_hidden_states=emb.repeat(2, 1, 1)).sample
        img = tiny.vae.decode(latents[0].permute(1, 0, 2, 3)).sample
    assert out.shape == latents.shape
    assert torch.isfinite(out).all()
    assert img.shape == (frames, 3, d.height, d.width)


def _cross_attention_maps(bb: Backbone, prompt: str, token_positions: list[int]):
    """Per cross-attention layer: head-averaged probabilities (batch*frames, pixels, tokens)."""
    maps = []

    def hook(module, args, kwargs):
        hs = args[0] if args else kwargs["hidden_states"]
        ctx = kwargs["encoder_hidden_states"]
        q, k = module.to_q(hs), module.to_k(ctx)
        h = module.heads
        q = q.view(q.shape[0], q.shape[1], h, -1).transpose(1, 2)
        k = k.view(k.shape[0], k.shape[1], h, -1).transpose(1, 2)
        probs = (q @ k.transpose(-1, -2) * module.scale).softmax(-1).mean(1)
        maps.append(probs[..., token_positions])

    handles = [
        m.register_forward_pre_hook(hook, with_kwargs=True)
        for n, m in bb.unet.named_modules()
        if n.endswith("attn2") and m.is_cross_attention
    ]
    try:
        emb, _ = _encode(bb, prompt)
        latents = torch.randn(1, 4, 4, 16, 16, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            bb.unet(latents, 700, encoder_hidden_states=emb)
    finally:
        for h in handles:
            h.remove()
    return maps


def _map_contrast(bb: Backbone) -> tuple[float, float]:
    """(min over layers of the maps' coefficient of variation, min of the cat/dog TV distance)."""
    _, ids = _encode(bb, "a cat and a dog")
    cat, dog = ids.index(2368), ids.index(1929)
    maps = _cross_attention_maps(bb, "a cat and a dog", [cat, dog])
    assert len(maps) >= 3  # down, mid and up cross-attention layers are hooked
    cvs, tvs = [], []
    for m in maps:
        p = m / m.sum(dim=1, keepdim=True)  # each word's map as a distribution over pixels
        cvs.append(float((p.std(dim=1) / p.mean(dim=1)).mean()))  # 0 for a flat map
        tvs.append(float(0.5 * (p[..., 0] - p[..., 1]).abs().sum(dim=1).mean()))
    return min(cvs), min(tvs)


def test_tiny_cross_attention_maps_are_not_flat(tiny):
    cv, tv = _map_contrast(tiny)
    assert cv > 0.3  # measured about 0.45-0.75 per layer
    assert tv > 0.15  # two words look at clearly different pixels (measured 0.28-0.47)
    # Control: undo the x8 query/key sharpening (default init) and the maps go nearly flat,
    # so the thresholds above do tell the two apart (measured cv ~0.1, tv ~0.03-0.08).
    flat = copy.copy(tiny)
    flat.unet = copy.deepcopy(tiny.unet)
    for name, module in flat.unet.named_modules():
        if name.endswith("attn2") and module.is_cross_attention:
            module.to_q.weight.data /= 8
            module.to_k.weight.data /= 8
    cv0, tv0 = _map_contrast(flat)
    assert cv0 < 0.2 and tv0 < 0.1


def test_tiny_latent_gradient_moves_attention_into_boxes(tiny):
    """The property guidance relies on: a few latent steps raise each noun's in-box share."""
    _, ids = _encode(tiny, "a cat and a dog")
    positions = [ids.index(2368), ids.index(1929)]
    emb, _ = _encode(tiny, "a cat and a dog")
    maps: list[torch.Tensor] = []

    def hook(module, args, kwargs):
        hs = args[0] if args else kwargs["hidden_states"]
        q, k = module.to_q(hs), module.to_k(kwargs["encoder_hidden_states"])
        q = q.view(q.shape[0], q.shape[1], module.heads, -1).transpose(1, 2)
        k = k.view(k.shape[0], k.shape[1], module.heads, -1).transpose(1, 2)
        maps.append((q @ k.transpose(-1, -2) * module.scale).softmax(-1).mean(1)[..., positions])

    def in_box_shares() -> torch.Tensor:
        """(2,) mean share of cat's mass in the left half-box, dog's in the right one."""
        out = []
        for j, (x0, x1) in enumerate([(0.0, 0.5), (0.5, 1.0)]):
            vals = []
            for m in maps:
                side = int(m.shape[1] ** 0.5)
                c = (torch.arange(side) + 0.5) / side
                inside = (c[None, :] >= x0) & (c[None, :] < x1) & (c[:, None] >= 0.25)
                inside = (inside & (c[:, None] < 0.75)).float().flatten()
                vals.append(((m[..., j] * inside).sum(1) / m[..., j].sum(1)).mean())
            out.append(torch.stack(vals).mean())
        return torch.stack(out)

    handles = [
        m.register_forward_pre_hook(hook, with_kwargs=True)
        for n, m in tiny.unet.named_modules()
        if n.endswith("attn2") and m.is_cross_attention
    ]
    try:
        z = torch.randn(1, 4, 2, 16, 16, generator=torch.Generator().manual_seed(0))
        history = []
        for _ in range(4):
            z = z.detach().requires_grad_(True)
            maps.clear()
            tiny.unet(z, 900, encoder_hidden_states=emb)
            share = in_box_shares()
            history.append(share.detach())
            loss = ((1 - share) ** 2).sum()
            (grad,) = torch.autograd.grad(loss, z)
            z = z - 0.1 * grad / grad.pow(2).mean().sqrt()  # RMS-normalised step
    finally:
        for h in handles:
            h.remove()
    start, end = history[0], history[-1]
    assert torch.allclose(start, torch.tensor([0.25, 0.25]), atol=0.06)  # ~ the box area
    print("in-box shares", start.tolist(), "->", end.tolist())
    assert (end - start).min() > 0.04, (start, end)  # measured about +0.07 each


def test_local_folder_saved_with_save_pretrained(tiny, tmp_path):
    folder = tmp_path / "my-t2v"
    tiny.unet.save_pretrained(folder / "unet")
    tiny.vae.save_pretrained(folder / "vae")
    tiny.text_encoder.save_pretrained(folder / "text_encoder")
    tiny.tokenizer.save_pretrained(folder / "tokenizer")
    tiny.scheduler.save_pretrained(folder / "scheduler")
    bb = load_backbone(str(folder), device="cpu")
    assert bb is not tiny and bb.name == "my-t2v"
    # An unregistered folder keeps its own scheduler class; defaults come from its configs.
    assert type(bb.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert bb.defaults.height == tiny.unet.config.sample_size * bb.vae_scale_factor
    emb, _ = _encode(tiny, "a red ball")
    emb2, _ = _encode(bb, "a red ball")
    torch.testing.assert_close(emb, emb2)
    lat = torch.randn(1, 4, 2, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a = tiny.unet(lat, 300, encoder_hidden_states=emb).sample
        b = bb.unet(lat, 300, encoder_hidden_states=emb2).sample
    torch.testing.assert_close(a, b)


def _fake_hub_cache(cache: Path, repo_id: str, source: Path, ref: str = "main") -> None:
    """A Hugging Face cache entry (refs/<ref> -> snapshots/<commit>) holding `source`."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / ref).write_text(commit)
    shutil.copytree(source, repo_dir / "snapshots" / commit)


def test_hub_id_loads_from_cache_offline(tmp_path, monkeypatch):
    from huggingface_hub import constants

    _fake_hub_cache(tmp_path / "hub", "starvid-test/tiny-t2v", TINY_DIR)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    bb = load_backbone("starvid-test/tiny-t2v", device="cpu")
    assert bb.source == "starvid-test/tiny-t2v"
    assert isinstance(bb.unet, UNet3DConditionModel)


def test_hub_id_with_revision_from_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    _fake_hub_cache(tmp_path / "hub", "starvid-test/rev-t2v", TINY_DIR, ref="safetensors")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    bb = load_backbone("starvid-test/rev-t2v@safetensors", device="cpu")
    assert isinstance(bb.unet, UNet3DConditionModel)
    with pytest.raises(StarVidError, match="not in the local Hugging Face cache"):
        load_backbone("starvid-test/rev-t2v", device="cpu")  # main is not cached


def test_hub_file_listing_refuses_pickle_only_and_picks_variant():
    pickled = [
        "model_index.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.bin",
        "vae/diffusion_pytorch_model.bin",
        "text_encoder/model.safetensors",
    ]
    with pytest.raises(StarVidError, match="unet has only pickle weights.*@refs/pr/N"):
        hub.unneeded_variants(pickled, torch.float16, "someone/model")
    both = [
        f"{part}/{stem}{v}.safetensors"
        for part, stem in hub.WEIGHT_PARTS.items()
        for v in ("", ".fp16")
    ]
    half = hub.unneeded_variants(both, torch.float16, "someone/model")
    full = hub.unneeded_variants(both, torch.float32, "someone/model")
    assert "unet/diffusion_pytorch_model.safe*" in half  # fp16 run: skip the fp32 file
    assert "unet/*.fp16.*" in full  # fp32 run: skip the fp16 file


def test_hub_id_not_cached_offline_says_download_first(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(StarVidError, match="download them first|local diffusers folder"):
        load_backbone("zeroscope", device="cpu")


def test_unknown_name_and_missing_folder():
    with pytest.raises(StarVidError, match="unknown backbone 'zeroscop'"):
        load_backbone("zeroscop")
    with pytest.raises(StarVidError, match="backbone folder not found"):
        load_backbone("./no/such/model")
    with pytest.raises(StarVidError, match="unknown backbone 'tiny@v2'"):
        load_backbone("tiny@v2")  # the shipped model has no revisions
    with pytest.raises(StarVidError, match="unknown scheduler"):
        load_backbone("tiny", scheduler="euler-magic")


def test_folder_without_unet_config(tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(TINY_DIR, folder)
    (folder / "unet" / "config.json").unlink()
    with pytest.raises(StarVidError, match="not a diffusers text-to-video folder: missing unet/"):
        load_backbone(str(folder))


def test_folder_with_image_unet_and_no_motion_adapter_is_refused(tmp_path):
    """An SD U-Net runs as AnimateDiff, with a motion adapter only (tests/test_animatediff.py)."""
    folder = tmp_path / "sd"
    shutil.copytree(TINY_DIR, folder)
    cfg = json.loads((folder / "unet/config.json").read_text())
    cfg["_class_name"] = "UNet2DConditionModel"
    (folder / "unet/config.json").write_text(json.dumps(cfg))
    with pytest.raises(StarVidError, match="image U-Net .* needs a motion adapter"):
        load_backbone(str(folder))
    cfg["_class_name"] = "UNetSpatioTemporalConditionModel"
    (folder / "unet/config.json").write_text(json.dumps(cfg))
    with pytest.raises(StarVidError, match="StarVid needs a UNet3DConditionModel"):
        load_backbone(str(folder))


@pytest.mark.parametrize(
    "path, text, message",
    [
        ("unet/config.json", '{"block_out_channels": [32, 64', "unreadable config"),
        ("unet/config.json", "[1, 2, 3]", "must be a JSON object, not list"),
        ("model_index.json", '["diffusers", "AutoencoderKL"]', "must be a JSON object"),
        ("unet/config.json", '{"block_out_channels": "wide"}', "could not load the model"),
        ("scheduler/scheduler_config.json", "\u0000garbage", "unreadable config"),
    ],
)
def test_folder_with_malformed_configs_is_one_line_error(tmp_path, path, text, message):
    """A user's folder with a broken config: a one-line StarVidError, never a traceback."""
    folder = tmp_path / "broken"
    shutil.copytree(TINY_DIR, folder)
    (folder / path).write_text(text)
    with pytest.raises(StarVidError, match=message) as info:
        load_backbone(str(folder))
    assert "\n" not in str(info.value)


def test_folder_with_only_pickle_weights(tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(TINY_DIR, folder)
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    # Never read: the loader must refuse before touching a pickle.
    (folder / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(StarVidError, match="only pickle weights.*safetensors only"):
        load_backbone(str(folder))


def test_fp16_variant_only_folder_loads(tmp_path):
    folder = tmp_path / "variant"
    shutil.copytree(TINY_DIR, folder)
    unet_dir = folder / "unet"
    (unet_dir / "diffusion_pytorch_model.safetensors").rename(
        unet_dir / "diffusion_pytorch_model.fp16.safetensors"
    )
    bb = load_backbone(str(folder), device="cpu")
    assert next(bb.unet.parameters()).dtype == torch.float32


@pytest.mark.parametrize("name", ["zeroscope", "modelscope"])
def test_random_weights_full_config_on_meta(name):
    configs = load_backbone_configs(name)
    unet_cfg = configs["unet"]
    assert unet_cfg["block_out_channels"] == [320, 640, 1280, 1280]
    assert unet_cfg["cross_attention_dim"] == configs["text_encoder"]["hidden_size"] == 1024
    bb = load_backbone(name, device="meta", random_weights=True)
    info = bb.info()
    assert bb.random_weights and bb.vae_scale_factor == 8
    assert isinstance(bb.unet, UNet3DConditionModel)
    # ModelScope's UNet3D has about 1.41 B parameters (2.8 GB in fp16).
    assert 1.40e9 < info["params"]["unet"] < 1.42e9
    assert 3.3e8 < info["params"]["text_encoder"] < 3.5e8
    assert 8.3e7 < info["params"]["vae"] < 8.4e7
    assert bb.defaults == BACKBONES[name].defaults


def test_random_weights_tiny_builds_on_cpu():
    bb = load_backbone("tiny", device="cpu", random_weights=True)
    assert bb.random_weights
    emb, _ = _encode(bb, "a cat")
    lat = torch.randn(1, 4, 2, 16, 16)
    with torch.no_grad():
        out = bb.unet(lat, 10, encoder_hidden_states=emb).sample
    assert out.shape == lat.shape


def test_random_weights_needs_registry_name(tmp_path):
    with pytest.raises(StarVidError, match="random_weights needs a registry backbone"):
        load_backbone("someone/some-model", random_weights=True)


def test_cli_lists_and_loads_backbones(capsys):
    from starvid.cli import main

    assert main(["backbones", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["shapes", "tiny", "zeroscope", "modelscope", "animatediff"]
    assert rows[0]["available_offline"] is True and rows[0]["defaults"]["frames"] == 8
    assert rows[1]["available_offline"] is True and rows[1]["defaults"]["height"] == 64
    assert main(["backbones", "--load", "tiny", "--device", "cpu", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["params"]["unet"] > 1e6 and info["vae_scale_factor"] == 4
    assert main(["backbones", "--load", "nonsense"]) == 2
    assert "unknown backbone 'nonsense'" in capsys.readouterr().err
