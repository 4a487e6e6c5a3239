"""The attention debugger's recording: every token of the prompt, every cross-attention layer,
every denoising step, recorded once during a run (or inside ``trace``) and browsable after.

An ``AttentionRecording`` is the observer of an ``AttentionStore`` (``starvid.attention``): the
recorders hand it the full softmax probabilities of each conditional, no-gradient forward, and
it keeps, for the prompt's tokens (start and end tokens included):

- ``steps``: ``(S, F, T, h, w)``, per step the mean over the guidance's layers, the very maps
  the run's heat maps and in-box shares average (so the two agree by value);
- ``level_steps``: resolution level -> per step ``(F, T, h, w)``, the mean of that level's layers;
- ``layers``: layer name -> ``(F, T, h_l, w_l)``, each layer alone, averaged over steps;
- ``heads`` (on request): layer name -> ``(F, heads, T, h_l, w_l)``, averaged over steps.

Steps are U-Net forwards the observer saw; in a guided run the gradient iterations are not
steps (they keep their graph and are never observed).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from starvid.attention import cross_attention_layers, mean_over_layers, token_positions
from starvid.errors import StarVidError

RECORD_CHOICES = ("needed", "full", "full_heads")
START, END = "<start>", "<end>"


def prompt_tokens(tokenizer, prompt: str, max_length: int = 77) -> list[str]:
    """The prompt's tokens as text, start and end tokens included (no padding)."""
    ids = tokenizer(prompt, truncation=True, max_length=max_length)["input_ids"]
    texts = []
    for i, tid in enumerate(ids):
        if i == 0:
            texts.append(START)
        elif i == len(ids) - 1:
            texts.append(END)
        else:
            texts.append(tokenizer.convert_ids_to_tokens(int(tid)).replace("</w>", ""))
    return texts


def prompt_words(tokenizer, prompt: str) -> dict[str, list[int]]:
    """Every word of the prompt -> its token positions; a repeated word gets "#2", "#3"."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"[^\W_]+|[^\w\s]", prompt)]
    groups: dict[str, list[int]] = {}
    for (a, b), pos in zip(spans, token_positions(tokenizer, prompt, spans), strict=True):
        if not pos:
            continue
        key, n = prompt[a:b], 2
        while key in groups:
            key, n = f"{prompt[a:b]}#{n}", n + 1
        groups[key] = pos
    return groups


@dataclass
class AttentionRecording:
    """Every prompt token's cross-attention per step and per layer (see the module docstring).

    Args:
        tokens: the prompt's tokens as text, position 0 the start token.
        words: word -> token positions (indices into ``tokens``).
        guidance_layers: the layers whose mean the guidance reads (the run's maps).
        levels: layer name -> resolution level (0 = latent size).
        window: the guidance window (steps ``0..window-1`` were guided; 0 for a baseline).
        heads: keep each head's maps too (memory: heads x the per-layer maps).
    """

    tokens: list[str]
    words: dict[str, list[int]]
    guidance_layers: list[str]
    levels: dict[str, int]
    window: int = 0
    keep_heads: bool = False
    steps: list[np.ndarray] = field(default_factory=list)
    # per resolution level, every step: the mean of that level's layers (which resolution
    # localizes a word when); per layer only the mean over steps is kept (memory)
    level_steps: dict[int, list[np.ndarray]] = field(default_factory=dict)
    _sums: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    _head_sums: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    _current: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @classmethod
    def for_prompt(
        cls, unet, tokenizer, prompt: str, guidance_layers, window: int = 0, heads: bool = False
    ) -> AttentionRecording:
        """A recording of every token of ``prompt`` at every cross-attention layer of ``unet``."""
        levels = {layer.name: layer.level for layer in cross_attention_layers(unet)}
        return cls(
            tokens=prompt_tokens(tokenizer, prompt),
            words=prompt_words(tokenizer, prompt),
            guidance_layers=list(guidance_layers),
            levels=levels,
            window=window,
            keep_heads=heads,
        )

    @property
    def layer_names(self) -> list[str]:
        """Every cross-attention layer, in the U-Net's execution order."""
        return list(self.levels)

    # -- the observer (``starvid.attention.AttentionObserver``) --------------------------------

    def observe(self, name: str, probs: torch.Tensor, hw: tuple[int, int]) -> None:
        """Keep one layer's probabilities ``(b, heads, n, keys)`` of the prompt's tokens."""
        from starvid.attention import _map_shape

        h, w = _map_shape(probs.shape[-2], hw)
        t = len(self.tokens)
        per_head = probs[..., :t].float().transpose(-1, -2)  # (b, heads, T, n)
        per_head = per_head.reshape(*per_head.shape[:-1], h, w)
        self._current[name] = per_head.mean(dim=1)
        if self.keep_heads:
            self._add(self._head_sums, name, per_head)

    def end_forward(self) -> None:
        """Close a step: its guidance-layer mean, and each layer into the per-layer sums."""
        if not self._current:
            return
        guided = {n: m for n, m in self._current.items() if n in self.guidance_layers}
        if guided:
            self.steps.append(mean_over_layers(guided).cpu().numpy().astype(np.float16))
        for level in sorted({self.levels.get(n, 0) for n in self._current}):
            same = {n: m for n, m in self._current.items() if self.levels.get(n, 0) == level}
            kept = mean_over_layers(same).cpu().numpy().astype(np.float16)
            self.level_steps.setdefault(level, []).append(kept)
        for name, m in self._current.items():
            self._add(self._sums, name, m)
        self._current = {}

    @staticmethod
    def _add(sums: dict[str, torch.Tensor], name: str, m: torch.Tensor) -> None:
        m = m.detach().float().cpu()
        sums[name] = m.clone() if name not in sums else sums[name] + m

    # -- arrays ---------------------------------------------------------------------------------

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    def positions(self, key: str) -> list[int]:
        """Token positions of a word, or of a raw token given as ``"#i"`` or its text."""
        if key in self.words:
            return self.words[key]
        if key.startswith("#") and key[1:].isdigit() and int(key[1:]) < len(self.tokens):
            return [int(key[1:])]
        if key in self.tokens:
            return [self.tokens.index(key)]
        raise StarVidError(f"'{key}' is no word or token of the recorded prompt")

    def label(self, key: str) -> str:
        """How a word or raw token is named in titles: ``#11`` is ``<end> (token 11)``."""
        if key not in self.words and key.startswith("#") and key[1:].isdigit():
            return f"{self.tokens[int(key[1:])]} (token {key[1:]})"
        return key

    def step_maps(self, key: str, level: str | None = None) -> np.ndarray:
        """``(S, F, h, w)``: the word's map at every step (guidance layers' mean, or with
        ``level="level:N"`` the mean of that resolution's layers)."""
        steps = self.steps if level is None else self.level_steps.get(int(level[6:]), [])
        if not steps:
            raise StarVidError(f"nothing was recorded for {level or 'the guidance layers'}")
        stacked = np.stack(steps).astype(np.float32)  # (S, F, T, h, w)
        return stacked[:, :, self.positions(key)].sum(axis=2)

    def level_choices(self) -> list[str]:
        """The resolution levels as ``layer`` names: ``"level:0"`` (the latent size), ..."""
        return [f"level:{lv}" for lv in sorted(self.level_steps)]

    def word_map(self, key: str, layer: str | None = None, step: int | None = None) -> np.ndarray:
        """``(F, h, w)``: a word at one ``layer`` (None: the guidance's mean; ``"level:N"``: the
        mean of one resolution's layers) and ``step`` (None: the mean over steps; a single
        layer keeps only its mean over steps)."""
        pos = self.positions(key)
        if layer is None or layer.startswith("level:"):
            maps = self.step_maps(key, layer)
            return maps.mean(axis=0) if step is None else maps[min(step, len(maps) - 1)]
        if layer not in self._sums:
            raise StarVidError(f"no maps of layer {layer!r} (recorded: {', '.join(self._sums)})")
        return (self._sums[layer][:, pos].sum(1) / self.n_steps).numpy()

    def head_maps(self, key: str, layer: str) -> np.ndarray:
        """``(heads, F, h, w)``: a word at one layer, each head alone (mean over steps)."""
        if layer not in self._head_sums:
            raise StarVidError("per-head maps were not recorded (record_attention=full_heads)")
        m = self._head_sums[layer][:, :, self.positions(key)].sum(2) / self.n_steps
        return m.transpose(0, 1).numpy()

    def layer_means(self) -> dict[str, np.ndarray]:
        """Layer -> ``(F, T, h_l, w_l)`` averaged over steps."""
        return {n: (s / max(self.n_steps, 1)).numpy() for n, s in self._sums.items()}

    # -- files ----------------------------------------------------------------------------------

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """npz entries under ``prefix`` (the run folder's ``attention.npz``)."""
        out = {f"{prefix}/steps": np.stack(self.steps) if self.steps else np.zeros((0,))}
        for level, maps in self.level_steps.items():
            out[f"{prefix}/level/{level}"] = np.stack(maps)
        for name, m in self.layer_means().items():
            out[f"{prefix}/layer/{name}"] = m.astype(np.float16)
        for name, s in self._head_sums.items():
            out[f"{prefix}/heads/{name}"] = (s / max(self.n_steps, 1)).numpy().astype(np.float16)
        return out

    def meta(self) -> dict:
        """What the arrays need to be read back: tokens, words, layers, window."""
        return {
            "tokens": self.tokens,
            "words": self.words,
            "guidance_layers": self.guidance_layers,
            "levels": self.levels,
            "window": self.window,
            "heads": self.keep_heads,
        }

    @classmethod
    def from_arrays(cls, meta: dict, arrays: dict[str, np.ndarray], prefix: str):
        """A recording read back from ``to_arrays`` and ``meta`` (no observer state)."""
        rec = cls(
            tokens=list(meta["tokens"]),
            words={k: list(v) for k, v in meta["words"].items()},
            guidance_layers=list(meta["guidance_layers"]),
            levels=dict(meta["levels"]),
            window=int(meta["window"]),
            keep_heads=bool(meta["heads"]),
        )
        steps = arrays[f"{prefix}/steps"]
        rec.steps = [s for s in steps] if steps.ndim > 1 else []
        n = max(rec.n_steps, 1)
        for key, value in arrays.items():
            if key.startswith(f"{prefix}/level/"):
                rec.level_steps[int(key.rsplit("/", 1)[1])] = list(value)
            for kind, sums in (("layer", rec._sums), ("heads", rec._head_sums)):
                head = f"{prefix}/{kind}/"
                if key.startswith(head):
                    sums[key[len(head) :]] = torch.from_numpy(value.astype(np.float32) * n)
        return rec


ATTENTION_FILES = ("attention.npz", "attention.json")


def save_recordings(recordings: dict[str, AttentionRecording], folder) -> dict[str, Path]:
    """Write runs' recordings (``{"guided": rec, "baseline": rec}``) into a run folder as
    ``attention.npz`` (arrays, float16) and ``attention.json`` (tokens, words, layers, window)."""
    from starvid import export

    folder = Path(folder)
    arrays: dict[str, np.ndarray] = {}
    for run, rec in recordings.items():
        arrays |= rec.to_arrays(run)
    meta = {run: rec.meta() for run, rec in recordings.items()}
    return {
        "attention": export.save_maps(arrays, folder / ATTENTION_FILES[0]),
        "attention_meta": export.write_text(json.dumps(meta), folder / ATTENTION_FILES[1]),
    }


def load_recordings(folder) -> dict[str, AttentionRecording]:
    """The recordings of a run folder written with ``record_attention=full`` ({} without)."""
    from starvid import export

    folder = Path(folder)
    if not (folder / ATTENTION_FILES[1]).is_file():
        return {}
    meta = json.loads((folder / ATTENTION_FILES[1]).read_text(encoding="utf-8"))
    arrays = export.load_maps(folder / ATTENTION_FILES[0])
    return {run: AttentionRecording.from_arrays(m, arrays, run) for run, m in meta.items()}
