"""Cross-attention recording for video U-Nets: token indexing, recording processors, heat maps.

In diffusers' ``UNet3DConditionModel`` the text cross-attention is ``attn2`` of the spatial
transformer blocks (``*.attentions.*.transformer_blocks.*.attn2``); ``temp_attentions`` and
``transformer_in`` attend over time and never see the text. The recording processor computes the
ordinary output with fused SDPA and, next to it, the softmax probabilities of only the token
positions somebody asked for, averaged over heads, as per-frame maps ``(batch*frames, tokens, h,
w)``. Everything else keeps ``AttnProcessor2_0``.

What a run records is an immutable ``RecordSpec`` (token positions, layers); how one forward
is recorded is a ``ForwardMode`` set with ``AttentionStore.mode`` (maps with gradient for the
loss, the unconditional CFG half skipped, an early stop after the last recorded layer). One
``MapAccumulator`` sums layer-averaged maps over forwards or steps, for the pipelines' runs and
for ``starvid.heatmaps.trace`` (DAAM-like heat maps around any U-Net or diffusers call).
A store's ``observer`` (the attention debugger's ``starvid.recording.AttentionRecording``)
also sees the full probabilities of every conditional no-gradient forward, from the recorded
layers and from tap-only ones (plain SDPA in the gradient passes, which it never reads).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Protocol

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from starvid.errors import StarVidError

MAX_TOKENS = 77
LAYER_PRESETS = ("low", "mid", "all")
DEFAULT_RECORD_LAYERS = "low"

_CROSS_ATTN = re.compile(
    r"^(down_blocks|up_blocks|mid_block)\.(?:(\d+)\.)?attentions\.(\d+)\."
    r"transformer_blocks\.(\d+)\.attn2$"
)


# -- token positions --------------------------------------------------------------------------


def token_positions(
    tokenizer, prompt: str, spans: Sequence[tuple[int, int]], max_length: int = MAX_TOKENS
) -> list[list[int]]:
    """Token positions (in the padded CLIP sequence) of each character span of ``prompt``.

    Position 0 is the start token, so the first word sits at 1 or later. A word split into several
    BPE tokens gets all of them; two occurrences of one word get their own positions. A word cut
    off by the 77-token limit gets ``[]`` and a warning.
    """
    for start, end in spans:
        if not 0 <= start < end <= len(prompt):
            raise StarVidError(f"span ({start}, {end}) is outside the prompt ({len(prompt)} chars)")
    offsets = _token_offsets(tokenizer, prompt)
    last = max_length - 1  # the end token needs the last place
    result: list[list[int]] = []
    for start, end in spans:
        pos = [i + 1 for i, (a, b) in enumerate(offsets) if a < end and b > start and b > a]
        kept = [p for p in pos if p < last]
        if pos and not kept:
            warnings.warn(
                f"'{prompt[start:end]}' is past CLIP's {max_length}-token limit and is ignored",
                stacklevel=2,
            )
        result.append(kept)
    return result


def _token_offsets(tokenizer, prompt: str) -> list[tuple[int, int]]:
    """Character offsets of each content token (no start/end token), in order."""
    try:
        enc = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
        return [tuple(o) for o in enc["offset_mapping"]]
    except (NotImplementedError, TypeError, ValueError, KeyError):
        pass
    # Slow tokenizers have no offsets: CLIP's BPE never merges across its pre-tokenizer's word
    # pieces, so tokenizing each piece alone gives the same tokens as the whole prompt.
    offsets: list[tuple[int, int]] = []
    piece = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_+", re.IGNORECASE)
    for m in piece.finditer(prompt):
        n = len(tokenizer(m.group(0), add_special_tokens=False)["input_ids"])
        offsets.extend([(m.start(), m.end())] * n)
    return offsets


# -- layer selection --------------------------------------------------------------------------


@dataclass(frozen=True)
class CrossAttnLayer:
    """One spatial cross-attention layer: module name and resolution level (0 = latent size)."""

    name: str
    level: int
    order: tuple[int, int, int, int]  # execution order in the U-Net forward


def cross_attention_layers(unet) -> list[CrossAttnLayer]:
    """The spatial text cross-attention layers of a UNet3D/2D, in execution order."""
    n_up = len(getattr(unet, "up_blocks", []))
    layers = []
    for name, module in unet.named_modules():
        m = _CROSS_ATTN.match(name)
        if not m or not isinstance(module, Attention) or not module.is_cross_attention:
            continue
        part, block, att, tb = m.group(1), int(m.group(2) or 0), int(m.group(3)), int(m.group(4))
        if part == "down_blocks":
            level, rank = block, 0
        elif part == "mid_block":
            level, rank = n_up - 1, 1
        else:
            level, rank = n_up - 1 - block, 2
        layers.append(CrossAttnLayer(name, level, (rank, block, att, tb)))
    return sorted(layers, key=lambda layer: layer.order)


def select_layers(unet, record_layers: str | Sequence[str] = DEFAULT_RECORD_LAYERS) -> list[str]:
    """Names of the cross-attention layers to record.

    ``"low"``: every layer below the latent resolution (mid block and the coarser down/up blocks;
    all layers if the model has cross-attention at one resolution only); ``"mid"``: the mid block;
    ``"all"``; or a list / comma-separated string of name prefixes (``"mid_block,up_blocks.1"``).
    """
    layers = cross_attention_layers(unet)
    if not layers:
        raise StarVidError("the U-Net has no spatial text cross-attention layers (attn2)")
    if isinstance(record_layers, str) and record_layers in LAYER_PRESETS:
        if record_layers == "all":
            chosen = layers
        elif record_layers == "mid":
            chosen = [layer for layer in layers if layer.name.startswith("mid_block.")]
        else:
            chosen = [layer for layer in layers if layer.level > 0] or layers
    else:
        prefixes = (
            [p.strip() for p in record_layers.split(",") if p.strip()]
            if isinstance(record_layers, str)
            else list(record_layers)
        )
        chosen = [layer for layer in layers if any(layer.name.startswith(p) for p in prefixes)]
    if not chosen:
        raise StarVidError(
            f"record_layers={record_layers!r} matches no cross-attention layer "
            f"(use {', '.join(LAYER_PRESETS)} or prefixes of: {layers[0].name}, ...)"
        )
    return [layer.name for layer in chosen]


# -- the store and the processor --------------------------------------------------------------


class StopForward(Exception):  # noqa: N818 - control flow, not an error
    """Raised after the last recorded layer when the rest of the U-Net output is not needed."""


@dataclass(frozen=True)
class ForwardMode:
    """How the recorders treat one U-Net forward (set with ``AttentionStore.mode``)."""

    keep_grad: bool = False  # the maps keep their graph: a loss backpropagates through them
    cond_only: bool = False  # a CFG batch: the unconditional first half is not recorded
    stop_early: bool = False  # end the forward after the last recorded layer (maps only)

    def without_early_stop(self) -> ForwardMode:
        return replace(self, stop_early=False)


# A guided step's gradient iteration: conditional batch only, maps with their graph, and no
# U-Net work past the last map the loss reads.
GRADIENT_PASS = ForwardMode(keep_grad=True, stop_early=True)
# An ordinary denoising forward with classifier-free guidance (without CFG: ``ForwardMode()``).
CFG_PASS = ForwardMode(cond_only=True)


@dataclass(frozen=True)
class RecordSpec:
    """What a run records: token positions (the union over its words) and layer names, in the
    U-Net's execution order."""

    positions: tuple[int, ...]
    layers: tuple[str, ...]

    def store(self, accumulate: bool = False) -> AttentionStore:
        """A fresh store recording this; with ``accumulate`` it also sums every forward's maps."""
        acc = MapAccumulator() if accumulate else None
        return AttentionStore(list(self.positions), list(self.layers), accumulator=acc)


class MapAccumulator:
    """Layer-averaged maps ``(rows, tokens, h, w)`` summed over forwards or steps (detached,
    float32): the one running sum behind ``trace()``'s heat maps and a run's mean maps."""

    def __init__(self):
        self.total: torch.Tensor | None = None
        self.count = 0

    def add(self, maps: torch.Tensor) -> None:
        m = maps.detach().float()
        self.total = m.clone() if self.total is None else self.total + m
        self.count += 1

    def mean(self) -> torch.Tensor:
        """The maps averaged over everything added."""
        if self.total is None:
            raise StarVidError("no attention maps were recorded (did the U-Net run?)")
        return self.total / self.count


@dataclass
class AttentionStore:
    """Keeps head-averaged maps of the needed token positions for the recorded layers.

    ``positions`` are the token positions to record (union over words). ``maps[layer]`` holds the
    latest forward's maps ``(batch*frames, len(positions), h, w)``. With an ``accumulator`` each
    forward's layer-averaged maps are also summed (DAAM-style heat maps).
    """

    positions: list[int]
    layers: list[str]
    keep_grad: bool = False
    skip_uncond: bool = False  # CFG batch: unconditional half first, record only the rest
    stop_early: bool = False
    replaying: bool = False  # a checkpointed layer recomputed in the backward pass
    accumulator: MapAccumulator | None = None
    # sees every conditional forward's full probabilities (``starvid.recording``): the
    # attention debugger's every token and layer, outside what the loss reads
    observer: AttentionObserver | None = None
    maps: dict[str, torch.Tensor] = field(default_factory=dict)
    forwards: int = 0
    latent_hw: tuple[int, int] = (0, 0)

    @property
    def spec(self) -> RecordSpec:
        return RecordSpec(tuple(self.positions), tuple(self.layers))

    def reset(self) -> None:
        """Forget the latest maps (the running sums stay)."""
        self.maps = {}

    @contextmanager
    def mode(self, mode: ForwardMode) -> Iterator[AttentionStore]:
        """Record the forwards inside the block in ``mode``; the previous mode comes back."""
        before = (self.keep_grad, self.skip_uncond, self.stop_early)
        self.keep_grad, self.skip_uncond, self.stop_early = (
            mode.keep_grad,
            mode.cond_only,
            mode.stop_early,
        )
        try:
            yield self
        finally:
            self.keep_grad, self.skip_uncond, self.stop_early = before

    def record(self, name: str, probs: torch.Tensor) -> None:
        """Store maps ``(rows, tokens, h*w)`` of one layer as ``(rows, tokens, h, w)``."""
        if self.replaying:  # the loss already holds this layer's maps
            return
        h, w = _map_shape(probs.shape[-1], self.latent_hw)
        maps = probs.reshape(*probs.shape[:-1], h, w)
        if not self.keep_grad:
            maps = maps.detach()
        self.maps[name] = maps
        if self.stop_early and name == self.layers[-1]:
            raise StopForward

    def layer_mean(self, source: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Maps averaged over recorded layers at the finest recorded resolution."""
        return mean_over_layers(self.maps if source is None else source)

    def accumulated(self) -> torch.Tensor:
        """Layer-averaged maps averaged over all forwards since the store was made."""
        if self.accumulator is None:
            raise StarVidError("this store does not accumulate maps")
        return self.accumulator.mean()


def resize_maps(m: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Maps ``(rows, tokens, h, w)`` resized bilinearly to ``hw``."""
    if tuple(m.shape[-2:]) == tuple(hw):
        return m
    rows, tok = m.shape[:2]
    flat = m.reshape(rows * tok, 1, *m.shape[-2:])
    return F.interpolate(flat, size=hw, mode="bilinear", align_corners=False).reshape(
        rows, tok, *hw
    )


def mean_over_layers(source: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-layer maps averaged at the finest of their resolutions (coarser ones upsampled)."""
    if not source:
        raise StarVidError("no attention maps were recorded (did the U-Net run?)")
    items = list(source.values())
    hw = (max(m.shape[-2] for m in items), max(m.shape[-1] for m in items))
    return sum(resize_maps(m, hw) for m in items) / len(items)


class AttentionObserver(Protocol):
    """Gets the full probabilities of each conditional (no-gradient) forward of the tapped
    layers, and the end of every U-Net forward."""

    def observe(self, name: str, probs: torch.Tensor, hw: tuple[int, int]) -> None: ...

    def end_forward(self) -> None: ...


def forward_for_maps(unet, sample, timestep, cond) -> None:
    """Run the U-Net for its recorded maps; with ``stop_early`` it ends after the last one."""
    try:
        unet(sample, timestep, encoder_hidden_states=cond)
    except StopForward:
        pass


def _map_shape(pixels: int, latent_hw: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of a layer from its pixel count: the latent size halved (rounding up) k times."""
    lh, lw = latent_hw
    if lh and lw:
        h, w = lh, lw
        for _ in range(8):
            if h * w == pixels:
                return h, w
            h, w = math.ceil(h / 2), math.ceil(w / 2)
    side = math.isqrt(pixels)
    if side * side == pixels:
        return side, side
    raise StarVidError(f"cannot tell the map shape of a layer with {pixels} pixels")


class RecordingAttnProcessor:
    """SDPA cross-attention that also records probabilities of the store's token positions."""

    def __init__(self, store: AttentionStore, name: str, tap_only: bool = False):
        self.store = store
        self.name = name
        self.tap_only = tap_only  # a layer only the observer reads, never the loss
        self._sdpa = AttnProcessor2_0()

    def _idle(self) -> bool:
        """A tap-only layer in a forward the observer does not read: plain fused SDPA."""
        store = self.store
        return self.tap_only and (store.observer is None or store.keep_grad or store.replaying)

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args,
        **kwargs,
    ) -> torch.Tensor:
        store = self.store
        if self._idle():
            return self._sdpa(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        wanted = bool(store.positions) or store.observer is not None
        if encoder_hidden_states is None or not wanted or attention_mask is not None:
            if encoder_hidden_states is not None and wanted:
                self._record(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
            return self._sdpa(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        # One softmax serves both the output and the recorded maps: a second fused SDPA pass
        # for the output would cost more than the whole recording (forward and backward).
        residual = hidden_states
        x, ctx, shape = self._inputs(attn, hidden_states, encoder_hidden_states, temb)
        q, k = self._heads(attn, attn.to_q(x)), self._heads(attn, attn.to_k(ctx))
        v = self._heads(attn, attn.to_v(ctx))
        q, k = self._norm(attn, q, k)
        rows = q.shape[0] // 2 if store.skip_uncond else 0
        probs = self._softmax(attn, q[rows:], k[rows:], None)
        self._keep(probs)
        out = probs.to(v.dtype) @ v[rows:]
        if rows:  # the unconditional half is not recorded: fused SDPA as in the plain U-Net
            uncond = F.scaled_dot_product_attention(
                q[:rows], k[:rows], v[:rows], dropout_p=0.0, scale=attn.scale
            )
            out = torch.cat([uncond, out])
        out = out.transpose(1, 2).reshape(q.shape[0], -1, attn.heads * q.shape[-1]).to(q.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if shape is not None:
            out = out.transpose(-1, -2).reshape(shape)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor

    @staticmethod
    def _inputs(attn, hidden_states, encoder_hidden_states, temb):
        x = hidden_states
        if attn.spatial_norm is not None:
            x = attn.spatial_norm(x, temb)
        shape = None
        if x.ndim == 4:
            shape = x.shape
            x = x.flatten(2).transpose(1, 2)
        if attn.group_norm is not None:
            x = attn.group_norm(x.transpose(1, 2)).transpose(1, 2)
        ctx = encoder_hidden_states
        if attn.norm_cross:
            ctx = attn.norm_encoder_hidden_states(ctx)
        return x, ctx, shape

    @staticmethod
    def _heads(attn, t: torch.Tensor) -> torch.Tensor:
        b, n, inner = t.shape
        return t.view(b, n, attn.heads, inner // attn.heads).transpose(1, 2)

    @staticmethod
    def _norm(attn, q, k):
        if attn.norm_q is not None:
            q = attn.norm_q(q)
        if attn.norm_k is not None:
            k = attn.norm_k(k)
        return q, k

    def _record(self, attn, hidden_states, encoder_hidden_states, attention_mask, temb) -> None:
        """Recording for the rare masked case: its own projections, output left to SDPA."""
        x, ctx, _ = self._inputs(attn, hidden_states, encoder_hidden_states, temb)
        rows = x.shape[0] // 2 if self.store.skip_uncond else 0
        with torch.set_grad_enabled(self.store.keep_grad and torch.is_grad_enabled()):
            q, k = self._heads(attn, attn.to_q(x[rows:])), self._heads(attn, attn.to_k(ctx[rows:]))
            q, k = self._norm(attn, q, k)
            self._keep(self._softmax(attn, q, k, attention_mask))

    @staticmethod
    def _softmax(attn, q, k, attention_mask) -> torch.Tensor:
        """Attention probabilities ``(b, heads, n, keys)`` over all 77 tokens, in float32."""
        b, heads = q.shape[0], q.shape[1]
        # scaling q rather than the scores: q is 77/head_dim times smaller
        scores = (q.float() * attn.scale) @ k.float().transpose(-1, -2)
        if attention_mask is not None:
            mask = attn.prepare_attention_mask(attention_mask, k.shape[2], b)
            scores = scores + mask.view(b, heads, -1, mask.shape[-1])[..., : scores.shape[-1]]
        return scores.softmax(dim=-1)

    def _keep(self, probs: torch.Tensor) -> None:
        """Record the store's token columns of ``probs``, averaged over heads."""
        store = self.store
        if store.observer is not None and not store.keep_grad and not store.replaying:
            store.observer.observe(self.name, probs.detach(), store.latent_hw)
        if self.tap_only:
            return
        idx = torch.as_tensor(store.positions, dtype=torch.long, device=probs.device)
        kept = probs.index_select(-1, idx).mean(dim=1)  # (b, n, tokens)
        store.record(self.name, kept.transpose(1, 2))


@contextmanager
def install_recorders(
    unet, store: AttentionStore, tap_layers: Sequence[str] = ()
) -> Iterator[AttentionStore]:
    """Record ``store.layers`` with ``RecordingAttnProcessor``; ``tap_layers`` (others) for
    the store's observer only; SDPA elsewhere; the U-Net's own processors back on exit."""
    original = dict(unet.attn_processors)
    sdpa = AttnProcessor2_0()
    wanted = {f"{name}.processor": name for name in store.layers}
    tapped = {f"{name}.processor": name for name in tap_layers if name not in store.layers}
    missing = (set(wanted) | set(tapped)) - set(original)
    if missing:
        raise StarVidError(f"the U-Net has no attention layer {sorted(missing)[0]}")
    procs = {}
    for key in original:
        if key in wanted:
            procs[key] = RecordingAttnProcessor(store, wanted[key])
        elif key in tapped:
            procs[key] = RecordingAttnProcessor(store, tapped[key], tap_only=True)
        else:
            procs[key] = sdpa

    def _pre_hook(_module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        store.latent_hw = (int(sample.shape[-2]), int(sample.shape[-1]))
        store.forwards += 1
        store.reset()

    def _post_hook(_module, _args, _output):
        if store.accumulator is not None and store.maps:
            store.accumulator.add(store.layer_mean())
        if store.observer is not None:
            store.observer.end_forward()

    unet.set_attn_processor(procs)
    handles = [
        unet.register_forward_pre_hook(_pre_hook, with_kwargs=True),
        unet.register_forward_hook(_post_hook),
    ]
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()
        unet.set_attn_processor(dict(original))  # diffusers pops from the dict
