"""The parser's entry points: one prompt, or a stream of prompts through one spaCy pipe."""

from __future__ import annotations

from starvid.errors import StarVidError
from starvid.parsing.build import build_parse
from starvid.parsing.nlp import load_nlp
from starvid.parsing.types import ParsedPrompt

MAX_PROMPT_CHARS = 1000


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Parse one prompt into subjects (noun, count, verbs) and scene nouns.

    Raises StarVidError for input that is not a prompt: empty, only punctuation, too long, or
    without a noun to lay out.
    """
    if not isinstance(prompt, str):
        raise StarVidError("the prompt must be text")
    text = prompt.strip()
    if not text:
        raise StarVidError("the prompt is empty")
    if len(text) > MAX_PROMPT_CHARS:
        raise StarVidError(
            f"the prompt is too long ({len(text)} characters; at most {MAX_PROMPT_CHARS})"
        )
    if not any(ch.isalpha() for ch in text):
        raise StarVidError("the prompt has no words, only numbers or punctuation")
    # The tagger reads ALL-CAPS words as proper nouns; lower case keeps offsets for ASCII.
    lowered = prompt.lower()
    if text.isupper() and len(lowered) == len(prompt):
        doc = load_nlp()(lowered)
    else:
        doc = load_nlp()(prompt)
    doc.user_data["source"] = prompt
    return build_parse(prompt, doc)


def parse_prompts(prompts: list[str]) -> list[ParsedPrompt]:
    """Parse several prompts with one pass of the pipeline (same rules as parse_prompt)."""
    return [parse_prompt(p) for p in prompts]
