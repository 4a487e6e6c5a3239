"""What a shapes training run watches: preview samples, the scorer's verdict, probes.

Every ``--sample-every`` steps the trainer writes a sample grid (``samples.png``) and logs, next
to the loss: the scorer's rates on preview captions, a motion probe (one object per motion,
sampled unguided), ``motion_drift_px`` (does the motion word steer the x0 prediction at all?)
and the attention localization ratios of colour, noun and verb tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from starvid.attention import AttentionStore, install_recorders, select_layers
from starvid.errors import StarVidError
from starvid.shapes import model as M
from starvid.shapes.score import score_video, summarize
from starvid.shapes.world import (
    MOTIONS,
    Group,
    WorldConfig,
    caption_of,
    render,
    sample_eval_groups,
    sample_scene,
)

MAX_WORDS = 20  # 3 groups of up to 6 words and 2 "and": token positions 1..20 are recorded


@torch.no_grad()
def sample_videos(
    unet,
    text_encoder,
    tokenizer,
    captions: list[str],
    cfg: M.ShapesModelConfig,
    steps: int = 20,
    guidance: float = 4.0,
    seed: int = 0,
) -> np.ndarray:
    """Plain DDIM sampling with classifier-free guidance: uint8 videos ``(n, f, H, W, 3)``."""
    device = next(unet.parameters()).device
    sched = M.build_sample_scheduler(cfg.prediction)
    sched.set_timesteps(steps)
    n = len(captions)
    ids = M.tokenize(tokenizer, [""] * n + captions).to(device)
    ctx = text_encoder(ids)[0]
    gen = torch.Generator("cpu").manual_seed(seed)
    shape = (n, cfg.latent_channels, cfg.frames, cfg.latent_size, cfg.latent_size)
    z = torch.randn(shape, generator=gen).to(device)
    for t in sched.timesteps:
        out = unet(torch.cat([z, z]), t, encoder_hidden_states=ctx).sample
        u, c = out.chunk(2)
        v = u + guidance * (c - u)
        z = _ddim_step(sched, v, t, z)
    return M.latents_to_video(z, cfg.patch)


def _ddim_step(sched, v, t, z):
    # The scheduler steps on (batch*frames, C, h, w) like diffusers' video pipelines.
    b, c, f, h, w = z.shape

    def flat(x):
        return x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)

    out = sched.step(flat(v), t, flat(z)).prev_sample
    return out.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


@torch.no_grad()
def attention_ratio(
    unet, text_encoder, tokenizer, world: WorldConfig, n: int = 8, t: int = 500, seed: int = 10**6
) -> dict[str, float]:
    """How much more attention mass colour / noun / verb tokens put on their objects than chance.

    For `n` world videos noised to timestep `t`, the mean over tokens and frames of (share of the
    token's map inside its objects' masks) / (share of the frame the masks cover), on the
    layer-averaged maps of every cross-attention layer. 1 means no localization.
    """
    device = next(unet.parameters()).device
    roles = ("color", "noun", "verb")
    samples = [sample_scene(seed + i, world) for i in range(n)]
    x0 = M.video_to_latents(np.stack([s.video for s in samples]))
    caps = [s.caption for s in samples]
    sched = M.build_train_scheduler()
    gen = torch.Generator("cpu").manual_seed(seed)
    noise = torch.randn(x0.shape, generator=gen)
    tt = torch.full((n,), t, dtype=torch.long)
    xt = sched.add_noise(x0, noise, tt)
    store = AttentionStore(list(range(1, MAX_WORDS + 1)), select_layers(unet, "all"))
    ctx = text_encoder(M.tokenize(tokenizer, caps).to(device))[0]
    with install_recorders(unet, store):
        unet(xt.to(device), tt.to(device), encoder_hidden_states=ctx)
    maps = store.layer_mean().float().cpu()  # (n*f, P, h, w)
    f = world.frames
    h, w = maps.shape[-2:]
    ratios: dict[str, list[float]] = {r: [] for r in roles}
    for i, s in enumerate(samples):
        gm = torch.from_numpy(s.group_masks()).float()  # (groups, f, H, W)
        gm = F.adaptive_avg_pool2d(gm, (h, w))
        for wd in s.words:
            if wd.role not in roles or wd.index >= MAX_WORDS:
                continue
            m = maps[i * f : (i + 1) * f, wd.index]  # (f, h, w)
            mask = gm[wd.group]
            inside = (m * mask).sum((-1, -2)) / m.sum((-1, -2)).clamp_min(1e-8)
            area = mask.mean((-1, -2)).clamp_min(1e-6)
            ratios[wd.role].append(float((inside / area).mean()))
    return {f"{r}_ratio": round(float(np.mean(v)), 3) for r, v in ratios.items() if v}


def motion_probe_groups() -> list[list[Group]]:
    """One single object per motion (colours and shapes rotating): does the model follow the
    motion word by itself?"""
    kinds = [("red", "circle"), ("blue", "square"), ("yellow", "triangle"), ("green", "square")]
    return [[Group(*kinds[i % len(kinds)], 1, m)] for i, m in enumerate(MOTIONS)]


def preview_groups() -> list[list[Group]]:
    """Captions of the sample grid: four single subjects and four held-out pairs."""
    singles = [
        [Group("red", "circle", 1, "right")],
        [Group("blue", "square", 2, "still")],
        [Group("yellow", "triangle", 1, "jump")],
        [Group("green", "circle", 3, "down")],
    ]
    return singles + sample_eval_groups(4, seed=1)


def write_grid(path: Path, videos: np.ndarray, scale: int = 3) -> None:
    """Rows: videos; columns: frames; nearest-neighbour upscaled PNG, written atomically."""
    rows = [np.concatenate(list(v), axis=1) for v in videos]
    grid = np.concatenate(rows, axis=0)
    grid = cv2.resize(grid, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    ok, png = cv2.imencode(".png", grid[..., ::-1])
    if not ok:
        raise StarVidError("could not encode the sample grid")
    M._atomic_write(path, lambda tmp: Path(tmp).write_bytes(png.tobytes()))


@torch.no_grad()
def motion_drift(unet, text_encoder, tokenizer, cfg, t: int = 900, seeds: int = 6) -> float:
    """Does the caption's motion word steer the x0 prediction? Mean horizontal drift (pixels,
    last frame minus first) of a red circle's predicted centroid under "moving right" minus
    under "moving left", from the same noised still video: 0 when the word is ignored, about
    twice the travel (2 x 9.6 px at 32x32) when followed."""
    from starvid.shapes.world import render

    sched = M.build_train_scheduler()
    drift = {}
    for motion in ("left", "right"):
        ctx = text_encoder(M.tokenize(tokenizer, [f"a red circle moving {motion}"]))[0]
        values = []
        for seed in range(seeds):
            video = render([Group("red", "circle", 1, "still")], seed=seed).video
            x0 = M.video_to_latents(video[None])
            gen = torch.Generator("cpu").manual_seed(seed)
            xt = sched.add_noise(x0, torch.randn(x0.shape, generator=gen), torch.tensor([t]))
            device = next(unet.parameters()).device
            pred = unet(xt.to(device), t, encoder_hidden_states=ctx.to(device)).sample
            frames = M.latents_to_video(pred, cfg.patch)[0].astype(np.float64)
            red = np.clip(frames[..., 0] - 0.5 * (frames[..., 1] + frames[..., 2]) - 40, 0, None)
            xs = np.arange(red.shape[2])
            cx = (red.sum(1) * xs).sum(1) / np.maximum(red.sum((1, 2)), 1e-6)
            values.append(cx[-1] - cx[0])
        drift[motion] = float(np.mean(values))
    return drift["right"] - drift["left"]


def write_preview(tr, log_path: Path) -> None:
    """Sample the preview captions with the trainer's EMA model, write the grid, log the
    scorer's rates and the probes."""
    groups = preview_groups()
    vids = sample_videos(
        tr.ema_unet.eval(),
        tr.ema_text.eval(),
        tr.tokenizer,
        [caption_of(g) for g in groups],
        tr.cfg,
        steps=tr.args.sample_steps,
    )
    truth = np.stack([render(g, seed=0, cfg=tr.world).video for g in groups[:2]])
    write_grid(tr.out / "samples.png", np.concatenate([truth, vids]))
    scores = [score_video(v, g) for v, g in zip(vids, groups, strict=True)]
    single = summarize(scores[:4])
    pair = summarize(scores[4:])
    probe = motion_probe_groups()
    probe_videos = sample_videos(
        tr.ema_unet,
        tr.ema_text,
        tr.tokenizer,
        [caption_of(g) for g in probe],
        tr.cfg,
        steps=tr.args.sample_steps,
        seed=1,
    )
    probe_scores = summarize([score_video(v, g) for v, g in zip(probe_videos, probe, strict=True)])
    ratio = attention_ratio(tr.ema_unet, tr.ema_text, tr.tokenizer, tr.world)
    drift = motion_drift(tr.ema_unet, tr.ema_text, tr.tokenizer, tr.cfg)
    rec = {
        "step": tr.step,
        "preview_single": single,
        "preview_pair": pair,
        "probe_single_motion": probe_scores["motion"],
        "probe_single_count": probe_scores["numeracy"],
        "motion_drift_px": round(drift, 3),
        **ratio,
    }
    append_jsonl(log_path, rec)
    print(json.dumps(rec), flush=True)


def append_jsonl(path: Path, rec: dict) -> None:
    """Append one JSON record as a line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(rec) + "\n")
