"""The parser's edge on the real spaCy pipeline: streams, control characters, number forms,
zero and negative counts, non-English prompts, and random text (property-based)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from starvid.errors import StarVidError
from starvid.parsing import ParsedPrompt, parse_prompt, parse_stream

CASES = Path(__file__).parent / "data" / "parse_cases.tsv"


def _case_prompts() -> list[str]:
    lines = CASES.read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[0] for line in lines if line.strip() and not line.startswith("#")]


def _outcome(prompt: str) -> ParsedPrompt | str:
    try:
        return parse_prompt(prompt)
    except StarVidError as exc:
        return f"error: {exc}"


# -- parse_stream ---------------------------------------------------------------------------------


def test_stream_gives_what_parse_prompt_gives_line_by_line_with_errors_in_place():
    lines = [*_case_prompts(), "", "   ", "?!...", "running quickly", "x" * 1200, "a cat sleeping"]
    results = list(parse_stream(lines))
    assert len(results) == len(lines)
    got = [f"error: {r}" if isinstance(r, StarVidError) else r for r in results]
    assert got == [_outcome(p) for p in lines]
    assert str(results[-6]) == "the prompt is empty"
    assert isinstance(results[-1], ParsedPrompt) and results[-1].subjects[0].noun == "cat"


def test_stream_reads_lazily_and_drops_line_endings():
    seen: list[str] = []

    def lines():
        for line in ("a dog running\n", "\n", "two cats sleeping\r\n", 42):
            seen.append(line)
            yield line

    results = parse_stream(lines())
    assert seen == []  # nothing read before the first result is asked for
    dog, empty, cats, number = results
    assert dog.prompt == "a dog running" and dog.subjects[0].verb_lemmas == ["run"]
    assert str(empty) == "the prompt is empty"
    assert cats.prompt == "two cats sleeping" and cats.subjects[0].count == 2
    assert str(number) == "the prompt must be text"


def test_stream_is_faster_than_one_parse_per_line():
    prompts = (_case_prompts() * 2)[:200]
    list(parse_stream(prompts))  # warm the word probes' caches for both
    one_by_one, streamed = [], []
    for _ in range(2):
        t = time.process_time()
        for p in prompts:
            parse_prompt(p)
        one_by_one.append(time.process_time() - t)
        t = time.process_time()
        list(parse_stream(prompts))
        streamed.append(time.process_time() - t)
    # Measured: x2.6 on 200 prompts (one spaCy call per batch of 64 instead of per prompt).
    assert min(one_by_one) / min(streamed) > 1.6


# -- control characters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "cleaned"),
    [
        ("\x1b[31mred cats\x1b[0m running", "     red cats     running"),
        ("a dog\x07 barking", "a dog  barking"),
        ("two\x85birds flying", "two birds flying"),
        ("\x9b1;31ma fox\x1b]0;title\x07 jumping", "      a fox" + " " * 11 + "jumping"),
        ("a cat \u202eleaping", "a cat  leaping"),
    ],
)
def test_control_characters_become_spaces_at_the_same_offsets(prompt, cleaned):
    parsed = parse_prompt(prompt)
    assert parsed.prompt == cleaned
    assert parsed.warnings == ["removed control characters from the prompt"]
    assert parsed.details()["warnings"] == parsed.warnings and "warnings" not in parsed.to_dict()
    for s in parsed.subjects:
        for w in (s.head, *s.verbs, *s.modifiers):
            assert (
                w.text.isprintable()
                and prompt[w.start : w.end] == w.text == cleaned[w.start : w.end]
            )


def test_control_characters_parse_like_the_clean_prompt():
    dirty = parse_prompt("\x1b[31mred cats\x1b[0m running to the left")
    clean = parse_prompt("     red cats     running to the left")
    assert dirty.to_dict() == clean.to_dict()
    assert [m.text for m in dirty.subjects[0].modifiers] == ["red"]
    assert (dirty.subjects[0].count, dirty.subjects[0].verb_lemmas) == (2, ["run"])


def test_tabs_and_line_breaks_stay_and_give_no_warning():
    parsed = parse_prompt("a dog running\tand a cat sleeping\r\n")
    assert parsed.prompt == "a dog running\tand a cat sleeping\r\n" and parsed.warnings == []
    assert [(s.noun, s.verb_lemmas) for s in parsed.subjects] == [
        ("dog", ["run"]),
        ("cat", ["sleep"]),
    ]


def test_only_control_characters_is_an_empty_prompt():
    with pytest.raises(StarVidError, match="empty"):
        parse_prompt("\x1b[0m\x00\x07")
