"""Whether a prompt looks like English: the parser reads English only, and a German or Chinese
prompt would otherwise give nonsense nouns without a word of warning.

English words are those of the pipeline's own lemmatizer tables (about 83,000 WordNet lemmas
and their irregular forms) and its stop words; a word counts as known when it, or it without a
regular ending, is one of them.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from starvid.parsing.nlp import load_nlp
from starvid.parsing.vocabulary import (
    DIRECTION_NOUNS,
    DIRECTION_WORDS,
    NUMBER_WORDS,
    QUANTIFIER_NOUNS,
    SCENE_NOUNS,
)

# Regular endings and what they replace, to find "flying" -> "fly", "puppies" -> "puppy".
_ENDINGS = (
    ("ies", "y"),
    ("es", ""),
    ("s", ""),
    ("ing", ""),
    ("ing", "e"),
    ("ed", ""),
    ("ed", "e"),
    ("er", ""),
    ("est", ""),
    ("ly", ""),
)


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """The lemmas and irregular forms of the pipeline's lemmatizer tables, and its stop words
    (empty when the pipeline has no such tables: then nothing is checked)."""
    nlp = load_nlp()
    words: set[str] = set()
    if "lemmatizer" in nlp.pipe_names:
        lookups = nlp.get_pipe("lemmatizer").lookups
        if lookups.has_table("lemma_index"):
            for lemmas in lookups.get_table("lemma_index").values():
                words.update(lemmas)
        if lookups.has_table("lemma_exc"):
            for forms in lookups.get_table("lemma_exc").values():
                words.update(forms)
    if not words:
        return frozenset()
    ours = (*DIRECTION_NOUNS, *DIRECTION_WORDS, *SCENE_NOUNS, *NUMBER_WORDS, *QUANTIFIER_NOUNS)
    return frozenset(words | set(nlp.Defaults.stop_words) | set(ours))


def _is_latin(word: str) -> bool:
    return all(unicodedata.name(ch, "").startswith("LATIN") for ch in word if ch.isalpha())


def _is_known(low: str, lemma: str, words: frozenset[str]) -> bool:
    if low in words or lemma in words:
        return True
    return any(
        low.endswith(end) and low[: len(low) - len(end)] + repl in words for end, repl in _ENDINGS
    )


def language_warning(doc) -> str | None:
    """A warning when most words of ``doc`` are not English: in another script, or unknown to
    the pipeline's vocabulary ("drei Katzen laufen nach links"); None otherwise.

    One-letter tokens do not count: the tokenizer cuts "im" into "i" and "m".
    """
    words = english_words()
    alphabetic = [t for t in doc if len(t) > 1 and any(ch.isalpha() for ch in t.text)]
    if not words or not alphabetic:
        return None
    other_script = [t for t in alphabetic if not _is_latin(t.text)]
    if len(other_script) * 2 > len(alphabetic):
        return "the prompt is not in the Latin script: the parser reads English only"
    unknown = [
        t.text
        for t in alphabetic
        if not _is_latin(t.text) or not _is_known(t.lower_, t.lemma_.lower(), words)
    ]
    if len(unknown) * 2 > len(alphabetic):
        shown = ", ".join(repr(w) for w in unknown[:5])
        return (
            f"the prompt does not look like English ({len(unknown)} of {len(alphabetic)} words "
            f"unknown: {shown}): the parser reads English only"
        )
    return None
