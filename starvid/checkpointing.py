"""Activation checkpointing of the U-Net's layers during StarVid's gradient iterations.

A gradient iteration keeps every activation between the latents and the last recorded layer for
the backward pass; at full size (ZeroScope, 576x320, 24 frames) that is most of the guided run's
memory. With checkpointing each layer of the U-Net's blocks (resnets, temporal convolutions,
spatial and temporal transformers, motion modules) keeps only its input, and the backward pass
recomputes the layer's inside when it needs it: the same gradient for one more partial forward
(its cost is in docs/results.md).

diffusers' UNet3D blocks carry a ``gradient_checkpointing`` flag that their forwards ignore, so
the layers are wrapped here, only inside ``checkpointed_layers`` and only while grad is enabled
(the no-grad denoising forwards run unchanged).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.utils.checkpoint import checkpoint

from starvid.attention import GRADIENT_PASS, AttentionStore, forward_for_maps, install_recorders

# Children of a U-Net block that hold its layers (UNet3D and AnimateDiff's UNetMotion names).
_LAYER_LISTS = ("resnets", "temp_convs", "attentions", "temp_attentions", "motion_modules")


def checkpointable_layers(unet) -> list[torch.nn.Module]:
    """The layers of the U-Net's down, mid and up blocks, in no particular order."""
    blocks = [*getattr(unet, "down_blocks", []), *getattr(unet, "up_blocks", [])]
    if getattr(unet, "mid_block", None) is not None:
        blocks.append(unet.mid_block)
    layers = []
    for block in blocks:
        for name in _LAYER_LISTS:
            layers.extend(getattr(block, name, None) or [])
    return layers


@contextmanager
def checkpointed_layers(unet, store: AttentionStore, enabled: bool = True) -> Iterator[None]:
    """Inside the block, forwards with grad enabled recompute each layer in the backward pass.

    While a layer is recomputed, ``store.replaying`` is set: the recording processors neither
    replace the maps the loss was computed from nor stop the forward.
    """
    if not enabled:
        yield
        return
    patched = []
    for layer in checkpointable_layers(unet):
        patched.append((layer, layer.__dict__.get("forward")))
        layer.forward = _checkpointed(layer.forward, store)
    try:
        yield
    finally:
        for layer, own in reversed(patched):
            if own is None:
                del layer.forward
            else:
                layer.forward = own


def _checkpointed(forward, store: AttentionStore):
    def run(*args, **kwargs):
        if not torch.is_grad_enabled():
            return forward(*args, **kwargs)
        calls = 0

        def body(*a, **k):
            nonlocal calls
            calls += 1
            if calls == 1:
                return forward(*a, **k)
            was, store.replaying = store.replaying, True
            try:
                return forward(*a, **k)
            finally:
                store.replaying = was

        return checkpoint(body, *args, use_reentrant=False, **kwargs)

    return run


def activation_bytes(unet, store: AttentionStore, latents, timestep, cond, checkpointing: bool):
    """Bytes of activations a gradient iteration's U-Net forward keeps for the backward pass.

    Each tensor storage counts once and the weights not at all. On the meta device nothing is
    computed, so this sizes a full-size model in a second on any machine.
    """
    weights = {t.untyped_storage()._cdata for t in [*unet.parameters(), *unet.buffers()]}
    kept: dict[int, int] = {}

    def pack(x: torch.Tensor) -> torch.Tensor:
        storage = x.untyped_storage()
        if storage._cdata not in weights:
            kept[storage._cdata] = storage.nbytes()
        return x

    z = latents.detach().requires_grad_(True)
    hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x)
    with install_recorders(unet, store), store.mode(GRADIENT_PASS):
        with checkpointed_layers(unet, store, checkpointing), torch.enable_grad(), hooks:
            forward_for_maps(unet, z, timestep, cond)
            store.layer_mean()
    store.reset()
    return sum(kept.values())
