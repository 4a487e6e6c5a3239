"""Prompt parsing with spaCy: subject nouns, their counts, and which verbs each one does.

The dependency parse of a small English model is often wrong on video prompts (participles
attached to the last noun, a verb tagged as a noun, "right" taken for a noun that owns the next
clause). The rules use the parse where it is reliable (part of speech, lemmas, noun phrases,
relative clauses) and bind verbs to nouns by position where it is not. Each repair rule names
the prompt that needs it; ``tests/test_parsing.py`` keeps one test per rule.

Modules, in the order a prompt goes through them: ``parse`` (the entry points), ``analysis``
(verbs and noun heads, with the tag repairs), ``binding`` (which heads do which verbs),
``build`` (subjects and scene); ``vocabulary``, ``tokens`` and ``nlp`` serve them, ``types``
holds the result.
"""

from starvid.parsing.nlp import load_nlp
from starvid.parsing.parse import MAX_PROMPT_CHARS, parse_prompt, parse_stream
from starvid.parsing.types import ParsedPrompt, Subject, Word

__all__ = [
    "MAX_PROMPT_CHARS",
    "ParsedPrompt",
    "Subject",
    "Word",
    "load_nlp",
    "parse_prompt",
    "parse_stream",
]
