"""The parser's entry points: one prompt, or a stream of prompts through one spaCy pipe.

Both check and clean the prompt at the edge (``_prepare``), run the pipeline, and build the
parse from the doc (``_finish``); the stream only batches the middle step.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from starvid.errors import StarVidError
from starvid.parsing.build import build_parse
from starvid.parsing.cleaning import blank_control_characters, blank_markup, plain_numerals
from starvid.parsing.language import language_warning
from starvid.parsing.nlp import load_nlp
from starvid.parsing.types import ParsedPrompt

MAX_PROMPT_CHARS = 1000
# Prompts per spaCy batch in parse_stream: large enough to amortize the model's per-call cost,
# small enough that a batch read from a pipe answers its first lines soon.
STREAM_BATCH = 64


@dataclass(frozen=True)
class _Prepared:
    """A checked prompt: ``prompt`` as the parse reports it, ``text`` as spaCy reads it."""

    prompt: str
    text: str
    warnings: tuple[str, ...]


def _prepare(prompt: str) -> _Prepared:
    """Check ``prompt`` and blank its control characters; raise StarVidError if it is no prompt."""
    if not isinstance(prompt, str):
        raise StarVidError("the prompt must be text")
    prompt, had_controls = blank_control_characters(prompt)
    warnings = ("removed control characters from the prompt",) if had_controls else ()
    had_text = bool(prompt.strip())
    prompt, markup = blank_markup(prompt)
    if markup:
        warnings += (f"removed HTML markup from the prompt: {', '.join(markup)}",)
    text = prompt.strip()
    if not text:
        raise StarVidError(
            "the prompt has only HTML markup, no words" if had_text else "the prompt is empty"
        )
    if len(text) > MAX_PROMPT_CHARS:
        raise StarVidError(
            f"the prompt is too long ({len(text)} characters; at most {MAX_PROMPT_CHARS})"
        )
    if not any(ch.isalpha() for ch in text):
        raise StarVidError("the prompt has no words, only numbers or punctuation")
    # spaCy reads a copy at the same offsets: numerals it knows ("⑫" as "3"), and lower case
    # for ALL CAPS, whose words the tagger reads as proper nouns (when lowering keeps offsets).
    reading = plain_numerals(prompt)
    lowered = reading.lower()
    if text.isupper() and len(lowered) == len(prompt):
        reading = lowered
    return _Prepared(prompt, reading, warnings)


def _finish(prepared: _Prepared, doc) -> ParsedPrompt:
    doc.user_data["source"] = prepared.prompt
    language = language_warning(doc)
    try:
        parsed = build_parse(prepared.prompt, doc)
    except StarVidError as exc:
        if language is None:
            raise
        raise StarVidError(f"{exc} ({language})") from exc
    parsed.warnings[:0] = [*prepared.warnings, *([language] if language else [])]
    return parsed


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Parse one prompt into subjects (noun, count, verbs) and scene nouns.

    Control characters (terminal escape sequences included) become spaces, so character
    offsets into the prompt stay those of the input. Raises StarVidError for input that is not
    a prompt: empty, only punctuation, too long, or without a noun to lay out.
    """
    prepared = _prepare(prompt)
    return _finish(prepared, load_nlp()(prepared.text))


def parse_stream(lines: Iterable[str]) -> Iterator[ParsedPrompt | StarVidError]:
    """Parse one prompt a line through one batched spaCy pipe, lazily and in order.

    Yields one result per line: its ParsedPrompt, or the StarVidError that ``parse_prompt``
    would raise for it (an empty line gives "the prompt is empty"), so one bad line does not
    stop the batch and results stay aligned with the lines. A line's ending (``\\n``,
    ``\\r\\n``) is dropped first; otherwise each result equals ``parse_prompt(line)``.
    """

    def prepared_lines() -> Iterator[tuple[str, _Prepared | StarVidError]]:
        for line in lines:
            if isinstance(line, str):
                line = line.removesuffix("\n").removesuffix("\r")
            try:
                prepared = _prepare(line)
            except StarVidError as exc:
                yield "", exc  # an empty doc keeps the error's place in the pipe's order
                continue
            yield prepared.text, prepared

    pipe = load_nlp().pipe(prepared_lines(), as_tuples=True, batch_size=STREAM_BATCH)
    for doc, item in pipe:
        if isinstance(item, StarVidError):
            yield item
            continue
        try:
            yield _finish(item, doc)
        except StarVidError as exc:
            yield exc
