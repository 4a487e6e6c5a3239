"""StarVid's losses on cross-attention maps and the guarded latent update.

Maps arrive as ``(frames, tokens, h, w)`` (the recorded token columns, averaged over heads and
layers). A word's map is the sum of its tokens' columns; a map normalized to sum 1 over the pixels
of a frame is a distribution.

- Spatial loss (numeracy, layout): for object instance ``i`` of a noun with ``n`` instances and
  frame ``f``, ``in_i`` is the noun's normalized mass inside box ``i``; the term ``(1 - n*in_i)^2``
  asks every box for its share ``1/n`` of the mass, so one big cat cannot satisfy two boxes. The
  optional ``"topk"`` form follows LLM-grounded video diffusion's top-k energy: the top-k mean
  inside box ``i`` against the top-k mean outside all boxes of that noun, per box.
- Syntax-aware contrastive loss (action binding): for verb ``v`` bound to noun ``n`` at frame ``f``,
  positives are ``n``'s maps at frames ``f-k..f+k``, negatives the other nouns' maps at those
  frames; InfoNCE over ``-distance/temperature`` with distance KL(verb || noun) or cosine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from starvid.layout import boxes_to_masks

EPS = 1e-8


@dataclass
class GuidanceTargets:
    """What the losses steer, as token columns of the recorded maps.

    ``noun_cols[s]`` are the columns of subject ``s``'s head noun; ``verb_cols`` pairs each verb
    occurrence with the subject that does it; ``extra_negative_cols`` are nouns that are no subject
    (scene nouns), used only as contrastive negatives; ``object_subject[i]`` is the subject of
    plan object ``i`` and ``boxes`` the plan's boxes ``(objects, frames, 4)``.
    ``spatial_cols[s]``, when given, are the columns the spatial loss pulls into subject ``s``'s
    boxes instead of its noun's (e.g. the noun and its adjectives).
    """

    noun_cols: list[list[int]]
    verb_cols: list[tuple[int, list[int]]]
    object_subject: list[int]
    boxes: np.ndarray
    extra_negative_cols: list[list[int]] = field(default_factory=list)
    spatial_cols: list[list[int]] | None = None
    _mask_cache: dict = field(default_factory=dict, repr=False)

    def masks(self, h: int, w: int, device=None) -> torch.Tensor:
        """Box masks ``(objects, frames, h, w)`` at a map resolution (cached)."""
        key = (h, w, str(device))
        if key not in self._mask_cache:
            self._mask_cache[key] = box_masks(self.boxes, h, w).to(device)
        return self._mask_cache[key]

    def instances(self) -> list[int]:
        """Number of plan objects per subject."""
        counts = [0] * len(self.noun_cols)
        for s in self.object_subject:
            counts[s] += 1
        return counts


def box_masks(boxes: np.ndarray, h: int, w: int) -> torch.Tensor:
    """Soft masks ``(objects, frames, h, w)``: the fraction of each map cell the box covers.

    Coverage rather than a hard threshold keeps small boxes visible on coarse maps (an 8x8 map
    cell is 1/8 of the frame); exact areas (no marked centre cell) keep each box's share honest.
    """
    return boxes_to_masks(
        np.asarray(boxes, dtype=np.float32), h, w, coverage=True, mark_centre=False
    )


def word_map(maps: torch.Tensor, cols: Sequence[int]) -> torch.Tensor:
    """A word's map ``(frames, h, w)``: the sum of its token columns of ``(frames, T, h, w)``."""
    if not cols:
        return torch.zeros_like(maps[:, 0])
    return maps[:, list(cols)].sum(1)


def distribution(m: torch.Tensor) -> torch.Tensor:
    """Normalize each frame's map to sum 1 over its pixels."""
    return m / m.sum(dim=(-2, -1), keepdim=True).clamp_min(EPS)


def inbox_share(maps: torch.Tensor, targets: GuidanceTargets) -> np.ndarray:
    """Per object and frame, the fraction of its noun's attention mass inside its box ``(O, F)``."""
    with torch.no_grad():
        masks = targets.masks(maps.shape[-2], maps.shape[-1], maps.device)
        out = []
        for i, s in enumerate(targets.object_subject):
            p = distribution(word_map(maps, targets.noun_cols[s]).float())
            out.append((p * masks[i]).sum(dim=(-2, -1)))
        return torch.stack(out).cpu().numpy().astype(float)


def spatial_loss(
    maps: torch.Tensor, targets: GuidanceTargets, form: str = "mass", topk: float = 0.75
) -> torch.Tensor:
    """Mean over objects and frames of the box-share term (see the module docstring)."""
    masks = targets.masks(maps.shape[-2], maps.shape[-1], maps.device)
    counts = targets.instances()
    cols = targets.spatial_cols or targets.noun_cols
    terms = []
    for i, s in enumerate(targets.object_subject):
        p = distribution(word_map(maps, cols[s]).float())  # (F, h, w)
        if form == "topk":
            others = [j for j, t in enumerate(targets.object_subject) if t == s]
            union = masks[others].amax(0)
            terms.append(_topk_energy(p, masks[i], 1.0 - union, topk))
        else:
            inside = (p * masks[i]).sum(dim=(-2, -1))  # (F,)
            terms.append((1.0 - counts[s] * inside) ** 2)
    return torch.stack(terms).mean()


def _topk_energy(p: torch.Tensor, inside: torch.Tensor, outside: torch.Tensor, frac: float):
    """``(1 - fg/(fg + bg))^2`` per frame, fg/bg the top-k means inside the box / outside all boxes.

    k is ``frac`` of the box's pixels. A box that gets no attention scores 1 even when a sibling
    box of the same noun holds all of it.
    """
    k = max(1, int(round(frac * float(inside[0].sum()))))
    a = p.flatten(1)
    k = min(k, a.shape[1])
    fg = torch.topk(a * inside.flatten(1), k, dim=1).values.mean(1)
    bg = torch.topk(a * outside.flatten(1), k, dim=1).values.mean(1)
    return (1.0 - fg / (fg + bg + EPS)) ** 2


def map_distance(p: torch.Tensor, q: torch.Tensor, distance: str = "kl") -> torch.Tensor:
    """Distance between distributions over pixels, broadcast over leading dims."""
    p = p.flatten(-2)
    q = q.flatten(-2)
    if distance == "kl":
        return (p * (torch.log(p + EPS) - torch.log(q + EPS))).sum(-1)
    if distance == "cosine":
        return 1.0 - torch.nn.functional.cosine_similarity(p, q, dim=-1, eps=EPS)
    raise ValueError(f"unknown distance {distance!r} (kl or cosine)")


def contrastive_loss(
    maps: torch.Tensor,
    targets: GuidanceTargets,
    adjacent_frames: int = 1,
    distance: str = "kl",
    temperature: float = 0.5,
    form: str = "infonce",
    margin: float = 1.0,
) -> torch.Tensor:
    """Syntax-aware contrastive loss: each verb's map close to its own noun's, far from the
    others'.

    ``form="infonce"`` (the paper's): InfoNCE over ``-distance/temperature``; it saturates (zero
    loss and gradient) once the verb sits on its noun far from the others. ``form="hinge"``: per
    frame, the mean distance to the own noun's maps in the window plus, per other noun,
    ``max(0, margin + own - other)``: it keeps pulling toward the own noun while the maps differ
    and pushes from another noun only while that one is within the margin.
    Without any negative noun (one subject, no scene noun) both are the mean positive distance,
    which still binds the verb to its noun.
    """
    if form not in ("infonce", "hinge"):
        raise ValueError(f"unknown syntax form {form!r} (infonce or hinge)")
    if not targets.verb_cols:
        return maps.new_zeros(())
    frames = maps.shape[0]
    nouns = [distribution(word_map(maps, c).float()) for c in targets.noun_cols]
    extra = [distribution(word_map(maps, c).float()) for c in targets.extra_negative_cols if c]
    k = max(0, int(adjacent_frames))
    # window[f, g] = frame g is within k of f
    idx = torch.arange(frames, device=maps.device)
    window = (idx[:, None] - idx[None, :]).abs() <= k
    losses = []
    for s, cols in targets.verb_cols:
        if not cols:
            continue
        v = distribution(word_map(maps, cols).float())  # (F, h, w)
        pos = map_distance(v[:, None], nouns[s][None], distance)  # (F, F)
        negs = [
            map_distance(v[:, None], n[None], distance) for j, n in enumerate(nouns) if j != s
        ] + [map_distance(v[:, None], n[None], distance) for n in extra]
        big = torch.finfo(pos.dtype).max / 4
        pos_logits = torch.where(window, -pos / temperature, -big)
        own = (pos * window).sum(1) / window.sum(1)  # (F,) mean over the window
        if not negs:
            losses.append(own)
            continue
        if form == "hinge":
            others = [(n * window).sum(1) / window.sum(1) for n in negs]
            push = torch.stack([torch.relu(margin + own - o) for o in others]).mean(0)
            losses.append(own + push)
            continue
        neg_logits = torch.cat([torch.where(window, -n / temperature, -big) for n in negs], 1)
        num = torch.logsumexp(pos_logits, dim=1)
        den = torch.logsumexp(torch.cat([pos_logits, neg_logits], 1), dim=1)
        losses.append(den - num)  # (F,)
    if not losses:
        return maps.new_zeros(())
    return torch.stack(losses).mean()


def verb_distances(
    maps: dict[str, np.ndarray], roles: dict[str, tuple[str, int]], distance: str = "kl"
) -> dict[str, float]:
    """Where the verbs' maps sit: the mean over verbs and frames of the syntax loss's distance
    from each verb's map to its own noun's map at the same frame (``own``) and to the other
    subjects' nouns' (``other``; NaN with one subject).

    Args:
        maps: label -> ``(frames, h, w)`` (a run's ``maps_window`` or ``maps.npz`` entries).
        roles: label -> (kind, subject), as ``starvid.targets.label_roles`` gives.
    """
    nouns = {s: maps[k] for k, (kind, s) in roles.items() if kind == "noun" and k in maps}
    own, other = [], []
    for label, (kind, s) in roles.items():
        if kind != "verb" or label not in maps or s not in nouns:
            continue
        v = distribution(torch.as_tensor(np.asarray(maps[label]), dtype=torch.float64))
        for t, n in nouns.items():
            d = map_distance(v, distribution(torch.as_tensor(n, dtype=torch.float64)), distance)
            (own if t == s else other).append(float(d.mean()))
    return {"own": _mean(own), "other": _mean(other)}


def _mean(xs: list[float]) -> float:
    return float(np.mean(xs)) if xs else float("nan")


TERMS = ("spatial", "syntax")


def loss_terms(
    maps: torch.Tensor,
    targets: GuidanceTargets,
    adjacent_frames: int = 1,
    distance: str = "kl",
    temperature: float = 0.5,
    spatial_form: str = "mass",
    syntax_form: str = "infonce",
    margin: float = 1.0,
) -> dict[str, torch.Tensor]:
    """The raw (unweighted) terms on maps ``(frames, tokens, h, w)``: "spatial" when the plan
    has objects, "syntax" when the parse has verbs."""
    terms = {}
    if targets.object_subject:
        terms["spatial"] = spatial_loss(maps, targets, spatial_form)
    if targets.verb_cols:
        terms["syntax"] = contrastive_loss(
            maps, targets, adjacent_frames, distance, temperature, syntax_form, margin
        )
    return terms


TERM_FLOOR = 0.1  # a term's normalizer is at least this share of the largest term's


def term_values(terms: dict[str, torch.Tensor], weights: dict[str, float]) -> dict[str, float]:
    """Each term raw (unweighted) and weighted, and the weighted total, as floats."""
    row = {}
    for name in TERMS:
        raw = float(terms[name].detach()) if name in terms else 0.0
        row[f"{name}_raw"] = raw
        row[name] = weights[name] * raw
    row["total"] = sum(row[name] for name in TERMS)
    return row


def map_gradients(
    maps: torch.Tensor, terms: dict[str, torch.Tensor], names: set[str] | None = None
) -> dict[str, torch.Tensor]:
    """Gradient of each raw term (of ``names``, default all) w.r.t. the maps: cheap, the losses
    are a small graph on the maps; the caller carries them to the latents through the U-Net."""
    out = {}
    for name, term in terms.items():
        if (names is not None and name not in names) or not term.requires_grad:
            continue
        (g,) = torch.autograd.grad(term, maps, retain_graph=True, allow_unused=True)
        if g is not None:
            out[name] = g
    return out


def term_normalizers(latent_grads: dict[str, torch.Tensor], normalize: str) -> dict[str, float]:
    """What each term's latent gradient is divided by before weighting.

    ``"per_term"``: its own RMS (so weight 1 pulls with the step size and each weight scales its
    own term), floored at ``TERM_FLOOR`` of the largest term's RMS: a term whose gradient is
    under a tenth of the largest pulls in proportion to it, so a nearly satisfied or saturated
    term (an InfoNCE whose verbs already sit on their nouns) fades out instead of being blown up
    to full strength. Pass every term's gradient, weighted or not: the floor must not depend on
    the weights. Other modes: 1 (``latent_step`` normalizes the sum, or not at all).
    """
    if normalize != "per_term":
        return {name: 1.0 for name in latent_grads}
    sizes = {name: rms(g) for name, g in latent_grads.items()}
    floor = max([TERM_FLOOR * max(sizes.values(), default=0.0), 1e-12])
    return {name: max(r, floor) for name, r in sizes.items()}


def rms(x: torch.Tensor) -> float:
    """Root mean square of a tensor, as a float."""
    return float(x.float().pow(2).mean().sqrt())


def hold_update_size(grad: torch.Tensor, size: float) -> torch.Tensor:
    """``grad`` rescaled to RMS ``size``: a guided step's later iterations keep the size of its
    first (per-term normalized, weighted) update, so the update does not fade as the terms are
    met; the weights' mix stays as the first iteration set it. A zero gradient stays zero."""
    current = rms(grad)
    if not math.isfinite(current) or current < 1e-12 or not math.isfinite(size):
        return grad
    return grad * (size / current)


def update_shares(
    latent_grads: dict[str, torch.Tensor], weights: dict[str, float], norms: dict[str, float]
) -> dict[str, float]:
    """Each term's share of the update's size (summing to 1) and its pull: the RMS of its part
    of the update in step-size units (``per_term``: its weight when it acts, about 0 when its
    gradient vanishes, as a saturated InfoNCE's does)."""
    pulls = {n: weights[n] * rms(g) / norms[n] for n, g in latent_grads.items()}
    sizes = {n: weights[n] * float(g.float().norm()) / norms[n] for n, g in latent_grads.items()}
    total = sum(sizes.values())
    ok = total > 0 and math.isfinite(total)
    out = {f"{n}_share": (sizes.get(n, 0.0) / total if ok else 0.0) for n in TERMS}
    return out | {f"{n}_pull": pulls.get(n, 0.0) for n in TERMS}


def latent_step(
    grad: torch.Tensor,
    step_size: float,
    normalize: str = "per_term",
    max_grad_norm: float | None = None,
    noise_scale: float = 1.0,
) -> tuple[torch.Tensor | None, str | None]:
    """The update to subtract from the latents, or ``(None, warning)`` when it must be skipped.

    ``normalize="per_term"``: ``step_size * grad``, where ``grad`` is already the weighted sum
    of per-term normalized gradients (``term_normalizers``); ``"rms"``: ``step_size * grad /
    rms(grad)`` (every update has the same size: only the weights' ratio matters); ``"none"``:
    ``step_size * grad``. ``max_grad_norm`` clips the gradient's L2 norm first. ``noise_scale``
    is the schedule factor (e.g. ``sqrt(1 - alpha_bar)``).
    """
    if not bool(torch.isfinite(grad).all()):
        return None, "non-finite gradient (NaN/Inf); latent update skipped"
    g = grad.float()
    if max_grad_norm is not None and max_grad_norm > 0:
        norm = float(g.norm())
        if norm > max_grad_norm:
            g = g * (max_grad_norm / norm)
    if normalize == "rms":
        divisor = rms(g)
    elif normalize in ("per_term", "none"):
        divisor = 1.0
    else:
        raise ValueError(f"unknown normalize_grad {normalize!r} (per_term, rms or none)")
    if not math.isfinite(divisor) or divisor < 1e-12 or float(g.abs().max()) == 0.0:
        return None, "zero gradient; latent update skipped"
    step = step_size * noise_scale * g / divisor
    if not math.isfinite(float(step.abs().max())):
        return None, "non-finite latent update; skipped"
    return step.to(grad.dtype), None
