"""The shapes model's training objective: the timesteps and learning rate of a step, the
diffusion loss and the training aids a large model does not get (attention into the objects'
masks, frame differences, drift)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from starvid.attention import AttentionStore


def aux_loss(store: AttentionStore, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over layers, tokens and frames of ``(1 - share of the map inside its mask)^2``.

    `targets` ``(b, P, f, H, W)`` are the word masks at video resolution (area-pooled to each
    layer's size), `weights` ``(b, P)`` select the tokens that have one.
    """
    if not store.maps or weights.sum() == 0:
        return torch.zeros(())
    b, p, f, hh, ww = targets.shape
    total = 0.0
    for maps in store.maps.values():  # (b*f, P, h, w), probabilities of positions 1..P
        h, w = maps.shape[-2:]
        m = maps.reshape(b, f, p, h, w).transpose(1, 2)
        t = F.adaptive_avg_pool2d(targets.reshape(-1, 1, hh, ww), (h, w)).reshape(b, p, f, h, w)
        mass = m.sum((-1, -2)).clamp_min(1e-8)
        share = (m * t).sum((-1, -2)) / mass  # (b, P, f)
        has = (t.sum((-1, -2)) > 0).float() * weights[..., None]
        total = total + ((1 - share) ** 2 * has).sum() / has.sum().clamp_min(1.0)
    return total / len(store.maps)


def temporal_loss(pred, x0, alpha_bar, max_weight: float):
    """Squared error of the frame-to-frame differences of an x0 prediction, weighted as
    `denoising_loss` weighs x0: the part of the error that is motion. The plain loss is dominated
    by what stays put (background, shapes), so motion is the last thing a small model learns."""
    dp = pred[:, :, 1:] - pred[:, :, :-1]
    dx = x0[:, :, 1:] - x0[:, :, :-1]
    w = (1.0 / (1.0 - alpha_bar)).clamp(max=max_weight)
    return (w * (dp - dx) ** 2).mean()


def drift_loss(pred, x0):
    """Squared error of each latent channel's drift over the clip: a frame's first spatial
    moments (x and y), fitted by a line over the frames, times the clip's length.

    The error is a linear function of the prediction, so the term's minimum is the conditional
    mean the plain loss has too; what changes is the weight of the one number a motion's sign
    lives in. In the plain loss, at high noise (where a sampler decides the way things move)
    that number is a sliver of a blurred prediction's error, and a small model can settle on
    predictions that are the same played forwards or backwards (left and right mixed up).
    """
    e = pred.float() - x0.float()  # (b, c, f, h, w)
    f, h, w = e.shape[2:]
    xs = torch.linspace(-1.0, 1.0, w, device=e.device)
    ys = torch.linspace(-1.0, 1.0, h, device=e.device)
    mx = (e.mean(3) * xs).mean(-1)  # (b, c, f)
    my = (e.mean(4) * ys).mean(-1)
    k = torch.arange(f, device=e.device, dtype=e.dtype) - (f - 1) / 2
    k = k * (f - 1) / (k**2).sum()  # least-squares slope, times the clip's length
    return ((mx * k).sum(-1) ** 2 + (my * k).sum(-1) ** 2).mean()


def denoising_loss(pred, x0, noise, alpha_bar, prediction: str, max_weight: float):
    """The diffusion loss of `pred` for clean `x0` noised with `noise` at `alpha_bar`.

    For x0 prediction the squared error is weighted ``1/(1 - alpha_bar)``, which makes it equal to
    the velocity loss of the velocity the prediction implies; clipping the weight at `max_weight`
    keeps the nearly clean timesteps (where x0 is easy) from dominating.
    """
    if prediction == "v_prediction":
        v_target = alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * x0
        return F.mse_loss(pred, v_target)
    w = (1.0 / (1.0 - alpha_bar)).clamp(max=max_weight)
    return (w * (pred - x0) ** 2).mean()


HIGH_NOISE_FROM = 0.6  # the share of the schedule above which a video's layout is decided


def sample_timesteps(n: int, total: int, high_share: float, gen) -> torch.Tensor:
    """Uniform timesteps, a ``high_share`` of them drawn from the noisiest 40 % instead: where
    a sampler decides where objects are and which way they move."""
    t = torch.randint(0, total, (n,), generator=gen)
    if high_share > 0:
        high = torch.randint(int(HIGH_NOISE_FROM * total), total, (n,), generator=gen)
        pick = torch.rand(n, generator=gen) < high_share
        t = torch.where(pick, high, t)
    return t


def learning_rate(args, step: int, progress: float) -> float:
    """Linear warm-up over the first ``--warmup`` steps of training; with ``--anneal-to``, a
    cosine decay from ``--lr`` to that rate over this call (`progress` from 0 to 1)."""
    lr = args.lr * min(1.0, (step + 1) / args.warmup)
    if args.anneal_to is not None:
        lr = args.anneal_to + (lr - args.anneal_to) * 0.5 * (1 + math.cos(math.pi * progress))
    return lr
