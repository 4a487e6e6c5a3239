"""Per-word heat maps around any U-Net forwards, DAAM style: ``trace(pipe, words, prompt)``.

Every U-Net forward inside the block is recorded for the words given (``starvid.attention``'s
processors and ``MapAccumulator``), and the U-Net's own processors come back afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from starvid.attention import (
    DEFAULT_RECORD_LAYERS,
    AttentionStore,
    ForwardMode,
    RecordSpec,
    install_recorders,
    select_layers,
    token_positions,
)
from starvid.errors import StarVidError
from starvid.recording import AttentionRecording


def _unet_of(model):
    return getattr(model, "unet", model)


class WordMaps:
    """Per-word heat maps of a ``trace`` block, ready after the forward passes.

    ``maps[word]`` (or ``maps[i]``) is a tensor ``(frames, h, w)``: the word's token probabilities
    summed over its tokens, averaged over recorded layers (upsampled to the finest) and forwards.
    """

    def __init__(self, store: AttentionStore, groups: dict[str, list[int]], recording=None):
        self.store = store
        self.groups = groups
        # with ``record_all``: every token at every layer and forward (``starvid.recording``),
        # for ``starvid.attention_views``
        self.recording: AttentionRecording | None = recording

    def keys(self) -> list[str]:
        return list(self.groups)

    def _all(self) -> dict[str, torch.Tensor]:
        maps = self.store.accumulated()  # (rows, tokens, h, w)
        col = {p: i for i, p in enumerate(self.store.positions)}
        out = {}
        for key, pos in self.groups.items():
            idx = [col[p] for p in pos]
            out[key] = maps[:, idx].sum(1) if idx else torch.zeros_like(maps[:, 0])
        return out

    def __getitem__(self, key: str | int) -> torch.Tensor:
        if isinstance(key, int):
            key = list(self.groups)[key]
        return self._all()[key]

    def as_dict(self) -> dict[str, torch.Tensor]:
        """All words' maps."""
        return self._all()


def word_groups(tokenizer, prompt: str, words) -> dict[str, list[int]]:
    """Label -> token positions for words given as strings, ``Word`` objects, spans or positions.

    A string names the first not yet used occurrence of that word in the prompt (so
    ``["dog", "dog"]`` are the two dogs of "a dog and a dog").
    """
    spans: list[tuple[int, int]] = []
    labels: list[str] = []
    direct: dict[str, list[int]] = {}
    used: set[int] = set()
    for w in words:
        if isinstance(w, str):
            start = _find_word(prompt, w, used)
            if start < 0:
                raise StarVidError(f"'{w}' is not a word of the prompt")
            used.add(start)
            spans.append((start, start + len(w)))
            labels.append(w)
        elif hasattr(w, "start") and hasattr(w, "end"):
            spans.append((w.start, w.end))
            labels.append(w.text)
        elif isinstance(w, tuple) and len(w) == 2:
            spans.append((int(w[0]), int(w[1])))
            labels.append(prompt[w[0] : w[1]])
        else:  # a list of explicit token positions
            direct[f"tokens{list(w)}"] = [int(p) for p in w]
    groups: dict[str, list[int]] = {}
    for label, pos in zip(labels, token_positions(tokenizer, prompt, spans), strict=True):
        key, n = label, 2
        while key in groups:
            key, n = f"{label}#{n}", n + 1
        groups[key] = pos
    groups.update(direct)
    return groups


def _find_word(prompt: str, word: str, used: set[int]) -> int:
    for m in re.finditer(rf"(?<!\w){re.escape(word)}(?!\w)", prompt, flags=re.IGNORECASE):
        if m.start() not in used:
            return m.start()
    return -1


@contextmanager
def trace(
    model,
    words,
    prompt: str | None = None,
    tokenizer=None,
    record_layers: str | Sequence[str] = DEFAULT_RECORD_LAYERS,
    cfg: bool = False,
    record_all: bool = False,
    heads: bool = False,
    window: int = 0,
) -> Iterator[WordMaps]:
    """Per-word cross-attention heat maps of every U-Net forward inside the block.

    The U-Net gets its own processors back when the block ends::

        with trace(pipe, ["cats", "walking"], prompt, cfg=True) as maps:
            pipe(prompt, num_frames=8)
        maps["walking"]  # (frames, h, w): summed over its tokens, mean over layers and steps

    Args:
        model: anything with ``.unet`` and ``.tokenizer`` (a StarVid or diffusers text-to-video
            pipeline), or a bare U-Net (then pass ``tokenizer``).
        words: strings (the first unused occurrence in ``prompt``: ``["dog", "dog"]`` are the
            two dogs of "a dog and a dog"), ``Word`` objects or character spans of ``prompt``,
            or lists of token positions.
        prompt: the prompt the forwards are conditioned on.
        tokenizer: the CLIP tokenizer, when ``model`` has none.
        record_layers: "low", "mid", "all" or layer-name prefixes.
        cfg: the batches are classifier-free guided: their unconditional first half is skipped.
        record_all: also record every token of ``prompt`` (start and end tokens included) at
            every cross-attention layer and forward: ``maps.recording``, which the views of
            ``starvid.attention_views`` draw (each forward is one step there).
        heads: with ``record_all``, each head's maps too.
        window: the steps to mark as the guidance window in the views (0: none).

    Returns:
        (in the ``with``) ``WordMaps``: ``maps[word]`` or ``maps[i]``, ``maps.as_dict()``, each
        ``(frames, h, w)``, ready once the forwards ran.
    """
    unet = _unet_of(model)
    tokenizer = tokenizer or getattr(model, "tokenizer", None)
    words = list(words)
    if any(not isinstance(w, list) for w in words) and (prompt is None or tokenizer is None):
        raise StarVidError("trace needs the prompt and a tokenizer to find words")
    groups = word_groups(tokenizer, prompt or "", words)
    positions = tuple(sorted({p for pos in groups.values() for p in pos}))
    store = RecordSpec(positions, tuple(select_layers(unet, record_layers))).store(accumulate=True)
    recording = None
    if record_all:
        if prompt is None or tokenizer is None:
            raise StarVidError("record_all needs the prompt and a tokenizer")
        recording = AttentionRecording.for_prompt(
            unet, tokenizer, prompt, store.layers, window=window, heads=heads
        )
        store.observer = recording
    taps = recording.layer_names if recording is not None else ()
    with install_recorders(unet, store, taps), store.mode(ForwardMode(cond_only=cfg)):
        yield WordMaps(store, groups, recording)
