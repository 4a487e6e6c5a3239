"""Two-stage LLM motion planner on llama.cpp (llama-cpp-python) with an embedded GGUF model.

Stage 1 lays out one box per object instance; stage 2 gives each object keyframes over the
video, which the Plan expands to every frame. Both stages are completions of a few-shot document
under a GBNF grammar built from the parse (see ``starvid.planning.llm_prompts``), so the output
always parses; code then validates and repairs it (``starvid.planning.llm_repair``), and falls
back to the heuristic planner when the model fails or runs out of time. Models are found and
loaded by ``starvid.planning.llm_models``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace

import numpy as np
from pydantic import ValidationError

from starvid.errors import StarVidError
from starvid.parsing import ParsedPrompt
from starvid.plan import Plan
from starvid.planning.heuristic import check_frames, check_seed, heuristic_plan
from starvid.planning.intent import VERB_MOTIONS, cap_counts, instance_ids, read_intent
from starvid.planning.llm_models import MODEL_LOCK, N_CTX, load_model, resolve_model
from starvid.planning.llm_prompts import (
    COLUMNS,
    DIRECTIONS,
    MODES,
    ROWS,
    SIZES,
    ObjectSpec,
    coarse_box,
    coarse_keyframes,
    layout_grammar,
    layout_prompt,
    motion_grammar,
    motion_prompt,
)
from starvid.planning.llm_repair import LlmFailure, box_valid, repair

# Coarse choices (a region, a size, a direction) rather than raw 0-100 boxes: a small model
# chooses well among few named options and copies one box when asked for numbers
# (benchmarks/planning.py; the figures are in docs/results.md).
DEFAULT_MODE = "coarse"
DEFAULT_TIMEOUT_S = 30.0
_PREFILL_CHUNK = 64


# -- what the prompt says about each subject -----------------------------------------------

# Vertical motion counts as stated only with one of these words: the heuristic reader also
# derives a rise from verbs such as "fly", which should not force every bird upward.
_VERTICAL_WORDS = re.compile(
    r"\b(?:up|upwards?|down|downwards?|skywards?|ris(?:e|es|ing)|fall(?:s|ing)?|"
    r"descend(?:s|ing)?|sink(?:s|ing)?|climb(?:s|ing)?)\b"
)
# Words that say a subject does not move ("staying still", "standing motionless"); with a verb
# of motion only a negation does ("a dog still running" runs, "two circles not moving" do not).
_STILL_WORDS = re.compile(r"\b(?:still|motionless|stationary|immobile|in\s+place|at\s+rest)\b")
_NOT_MOVING = re.compile(r"\b(?:not|never|n't)\s+(?:mov|go|travel)\w*")
_MOVING_KINDS = frozenset(("travel", "rise", "descend", "hop", "approach", "recede"))


def _verb_directions(lemmas: list[str]) -> tuple[str, ...]:
    """The directions a subject's verbs leave open when no word names one: a verb of staying
    ("stay", "sit") allows only "still"; a moving verb rules "still" out; a rising verb
    ("float", "fly") rules "down" out and a falling one "up". Empty: the verbs say nothing."""
    kinds = {VERB_MOTIONS[v][0] for v in lemmas if v in VERB_MOTIONS}
    if kinds == {"still"}:
        return ("still",)
    ruled_out = set()
    if kinds & _MOVING_KINDS:
        ruled_out.add("still")
    if "rise" in kinds and "descend" not in kinds:
        ruled_out.add("down")
    if "descend" in kinds and "rise" not in kinds:
        ruled_out.add("up")
    return tuple(d for d in DIRECTIONS if d not in ruled_out) if ruled_out else ()


def _sizes(count: int, total: int) -> tuple[str, ...]:
    """The box sizes offered for an instance: several instances of one subject are small, so
    that each has its own cell of the 3 x 3 layout grid (cells are 0.28 apart); a crowded plan
    has no large boxes."""
    if count >= 2:
        return ("small",)
    return SIZES[:2] if total >= 4 else SIZES


def stated_options(parsed: ParsedPrompt, index: int) -> tuple[tuple[str, ...], ...]:
    """(columns, rows, directions) that agree with what the prompt says about a subject.

    Reads the subject's clause with the heuristic planner's ``read_intent``, so both planners
    understand "on the left", "from the top left corner to the bottom right corner" or "toward
    the camera" alike. An empty statement leaves every option open for the model.
    """
    it = read_intent(parsed, index)
    m, route = it.motion, it.route
    columns = rows = directions = ()
    if it.x is not None:
        columns = ("left",) if it.x < 0.4 else ("right",) if it.x > 0.6 else ("centre",)
    if it.y is not None:
        rows = ("top",) if it.y < 0.4 else ("bottom",) if it.y > 0.6 else ("middle",)
    subj = parsed.subjects[index]
    c0, c1 = subj.clause if subj.clause[1] > subj.clause[0] else (subj.phrase[0], None)
    text = parsed.prompt[c0:c1].lower()
    if route is not None and (route.step(0) or route.step(1)):
        ways = (("left", "", "right")[route.step(0) + 1], ("up", "", "down")[route.step(1) + 1])
        directions = tuple(w for w in ways if w)  # one of them, the model cannot go diagonally
    elif m.dx and not m.free_direction:
        directions = ("left",) if m.dx < 0 else ("right",)
    elif m.stretch:
        directions = ("left", "right")  # "across"
    elif m.scale != 1.0:
        directions = ("toward",) if m.scale > 1 else ("away",)
    elif abs(m.dy) >= 0.1 and _VERTICAL_WORDS.search(text):
        directions = ("up",) if m.dy < 0 else ("down",)
    elif m.hops and not m.dx:
        directions = ("bounce",)  # "a dog jumping on the left": it hops where it is
    kinds = {VERB_MOTIONS[v][0] for v in subj.verb_lemmas if v in VERB_MOTIONS}
    still = _NOT_MOVING.search(text) or (_STILL_WORDS.search(text) and not kinds & _MOVING_KINDS)
    if still and not directions:
        directions = ("still",)  # "two blue circles staying still"
    directions = directions or _verb_directions(subj.verb_lemmas)
    return columns or COLUMNS, rows or ROWS, directions or DIRECTIONS


def object_specs(parsed: ParsedPrompt, counts: list[int]) -> list[ObjectSpec]:
    """One spec per instance ("three cats" → cat-1..cat-3), numbered like the heuristic plan.

    ``counts`` are the instances to plan per subject (``cap_counts``; 0 leaves a subject out).
    """
    ids = instance_ids([s.noun for s in parsed.subjects], counts)
    total = sum(counts)
    specs = []
    for si, subj in enumerate(parsed.subjects):
        if not counts[si]:
            continue
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
                sizes=_sizes(counts[si], total),
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


@dataclass
class _Stages:
    """One run's settings for the two stages, and what they produced so far.

    ``asked`` are the specs whose options the grammars offer (``specs`` with every option open
    when the run is not constrained); ``texts`` and ``draft`` grow as the stages go, so that a
    failure halfway still shows what the model wrote.
    """

    prompt: str
    specs: list[ObjectSpec]
    asked: list[ObjectSpec]
    mode: str
    frames: int
    seed: int
    deadline: float
    max_tokens: int | None
    constrain: bool
    texts: list[str] = field(default_factory=list)
    draft: list[dict[int, np.ndarray]] = field(default_factory=list)


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
    counts, warnings = cap_counts(parsed)
    specs = object_specs(parsed, counts)
    asked = (
        specs
        if constrain
        else [replace(sp, columns=COLUMNS, rows=ROWS, directions=DIRECTIONS) for sp in specs]
    )
    st = _Stages(
        parsed.prompt, specs, asked, mode, frames, seed, start + timeout_s, max_tokens, constrain
    )

    def failed(reason: str, valid: bool = False) -> LlmRun:
        return LlmRun(None, st.draft, specs, valid, [], st.texts, time.monotonic() - start, reason)

    ref = resolve_model(model)
    with MODEL_LOCK:
        llm = load_model(ref.path)
        try:
            _run_stages(llm, st)
        except LlmFailure as exc:
            return failed(str(exc))
        except (RuntimeError, ValueError) as exc:  # llama.cpp decode or grammar errors
            return failed(f"llama.cpp error: {exc}")
    valid = all(box_valid(b) for keys in st.draft for b in keys.values())
    try:
        trajs, notes = repair([dict(k) for k in st.draft], specs, frames)
        label = f"llm:{ref.label}" + ("" if mode == DEFAULT_MODE else f" ({mode})")
        plan = _to_plan(st, trajs, warnings + [f"llm plan repaired: {n}" for n in notes], label)
    except LlmFailure as exc:
        return failed(str(exc), valid)
    except ValidationError as exc:  # a repair bug must not take planning down with it
        return failed(f"invalid plan after repair: {exc.errors()[0]['msg']}", valid)
    return LlmRun(plan, st.draft, specs, valid, notes, st.texts, time.monotonic() - start)


def _run_stages(llm, st: _Stages) -> None:
    """Stage 1 (where each instance starts), then stage 2 (how it moves), into ``st.draft``."""
    coarse = st.mode == "coarse"
    # Token budgets: a line's length in characters bounds its tokens for any vocabulary.
    answer = len("centre middle medium") if coarse else len("100 " * 4)
    budget = sum(len(s.id) + answer + 3 for s in st.specs) + 8
    prompt1 = layout_prompt(st.prompt, st.specs, st.mode)
    grammar = layout_grammar(st.asked, st.mode)
    text = _complete(llm, prompt1, grammar, st.max_tokens or budget, st.deadline, st.seed)
    st.texts.append(text)
    starts = _lines(text, [s.id for s in st.specs])
    firsts = [coarse_box(*v.split()) if coarse else _percent_box(v) for v in starts]
    # Stage 2 continues the same text after the layout.
    answer = len("toward medium") if coarse else len("100 " * 8 + "-> ")
    budget = sum(len(s.label) + answer + 3 for s in st.specs) + 8
    prompt2 = motion_prompt(prompt1, text)
    grammar = motion_grammar(st.asked, st.mode, starts)
    text = _complete(llm, prompt2, grammar, st.max_tokens or budget, st.deadline, st.seed)
    st.texts.append(text)
    moves = _lines(text, [s.label for s in st.specs])
    for spec, first, value in zip(st.specs, firsts, moves, strict=True):
        st.draft.append(_trajectory(spec, first, value, st))


def _trajectory(
    spec: ObjectSpec, first: np.ndarray, answer: str, st: _Stages
) -> dict[int, np.ndarray]:
    """Keyframes of one instance from its first box and its stage-2 answer."""
    if st.mode != "coarse":
        end = _percent_box(answer.split("->")[1])
        last = st.frames - 1
        return {0: first, last: end} if last > 0 else {0: first}
    direction, *speed = answer.split()
    if st.constrain and set(spec.directions) == {"left", "right"}:
        # "across": the long way
        direction = "right" if first[0] + first[2] < 1.0 else "left"
        speed = ["fast"]
    return coarse_keyframes(first, direction, speed[0] if speed else "medium", st.frames)


def _to_plan(
    st: _Stages, trajs: list[dict[int, np.ndarray]], warnings: list[str], planner: str
) -> Plan:
    """The validated Plan of the repaired trajectories (keyframes expanded to every frame)."""
    return Plan.model_validate(
        {
            "frames": st.frames,
            "planner": planner,
            "prompt": st.prompt,
            "objects": [
                {
                    "id": s.id,
                    "noun": s.noun,
                    "subject": s.subject,
                    "verbs": s.verbs,
                    "keyframes": {int(f): [float(v) for v in b] for f, b in keys.items()},
                }
                for s, keys in zip(st.specs, trajs, strict=True)
            ],
            "warnings": warnings,
        }
    )


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
    check_frames(frames)
    check_seed(seed)
    run = run_llm(parsed, frames=frames, seed=seed, model=model, timeout_s=timeout_s, mode=mode)
    if run.plan is not None:
        return run.plan
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
