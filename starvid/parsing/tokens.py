"""Small readings of one spaCy token: its Word, its noun lemma, plural or not."""

from __future__ import annotations

from starvid.parsing.types import Word
from starvid.parsing.vocabulary import DIRECTION_NOUNS, IRREGULAR_LEMMAS


def source_text(tok) -> str:
    """``tok``'s text in the user's prompt: spaCy reads a copy that may be lower-cased and has
    plain numerals (``parse._prepare``), at the same offsets."""
    return tok.doc.user_data.get("source", tok.doc.text)[tok.idx : tok.idx + len(tok.text)]


def word_of(tok, lemma: str | None = None) -> Word:
    """The Word of ``tok``, its text read from the user's prompt."""
    end = tok.idx + len(tok.text)
    return Word(source_text(tok), lemma or tok.lemma_.lower(), tok.idx, end, tok.i)


def noun_lemma(tok) -> str:
    """The lemma of a noun, with the irregular plurals the lemmatizer misses."""
    low = tok.text.lower()
    if low in IRREGULAR_LEMMAS:
        return IRREGULAR_LEMMAS[low]
    if low in DIRECTION_NOUNS:
        return low
    # Names keep their case; a capital from the sentence start or ALL CAPS does not count.
    if tok.pos_ == "PROPN" and tok.i > 0 and not tok.text.isupper():
        return tok.lemma_
    return tok.lemma_.lower()


def is_plural(tok) -> bool:
    """Whether the tagger or the morphology calls ``tok`` plural."""
    return tok.tag_ in ("NNS", "NNPS") or "Plur" in tok.morph.get("Number")
