"""Planning: from a parsed prompt to a Plan (one box per object instance per frame).

Two planners read the same intent vocabulary (``intent``: where each subject starts, how it
moves): the heuristic planner (``heuristic``, no model) lays intents out with a small cost
search; the LLM planner (``llm``) asks a small GGUF model on llama.cpp for coarse choices under a
grammar and repairs them. :func:`make_plan` picks one.

Imports flow one way: this package's ``__init__`` -> ``llm`` -> ``heuristic`` -> ``intent``.
"""

from __future__ import annotations

from starvid.errors import StarVidError
from starvid.parsing import ParsedPrompt
from starvid.plan import Plan
from starvid.planning.heuristic import (
    MAX_SEED,
    SEPARATION_IOU,
    check_frames,
    check_seed,
    describe_motion,
    heuristic_plan,
    layout_intents,
    plan_from_intents,
)
from starvid.planning.intent import (
    MAX_INSTANCES,
    Intent,
    Motion,
    cap_counts,
    instance_ids,
    read_intent,
)
from starvid.planning.llm import DEFAULT_MODE, LlmRun, llm_plan, run_llm, stated_options
from starvid.planning.llm_models import (
    embedded_model_path,
    llm_available,
    load_model,
    require_llm,
    resolve_model,
)

PLANNERS = ("auto", "llm", "heuristic")


def make_plan(
    parsed: ParsedPrompt,
    frames: int = 16,
    seed: int = 0,
    planner: str = "auto",
    model: str | None = None,
) -> Plan:
    """Plan a parsed prompt with the chosen planner ("auto": the LLM when available, else the
    heuristic planner; "llm" says why when the LLM cannot run)."""
    if not isinstance(parsed, ParsedPrompt):
        raise TypeError(f"make_plan takes a ParsedPrompt (call parse_prompt first), not {parsed!r}")
    check_frames(frames)
    check_seed(seed)
    if planner not in PLANNERS:
        raise StarVidError(f"unknown planner '{planner}' (choose from {', '.join(PLANNERS)})")
    if planner == "llm":
        require_llm(model)  # says exactly why the LLM planner cannot run, when it cannot
    if planner == "llm" or (planner == "auto" and llm_available(model)):
        plan = llm_plan(parsed, frames, seed, model=model)
    else:
        plan = heuristic_plan(parsed, frames=frames, seed=seed)
    plan.prompt = parsed.prompt
    return plan


__all__ = [
    "DEFAULT_MODE",
    "MAX_INSTANCES",
    "MAX_SEED",
    "PLANNERS",
    "SEPARATION_IOU",
    "Intent",
    "LlmRun",
    "Motion",
    "cap_counts",
    "check_frames",
    "check_seed",
    "describe_motion",
    "embedded_model_path",
    "heuristic_plan",
    "instance_ids",
    "layout_intents",
    "llm_available",
    "llm_plan",
    "load_model",
    "make_plan",
    "plan_from_intents",
    "read_intent",
    "require_llm",
    "resolve_model",
    "run_llm",
    "stated_options",
]
