"""The repairs over one spaCy doc: which tokens are verbs (R1, R3, R6, R12, R18-R20, R22) and which
are subject noun heads, with their phrase and count (R4, R8, R15, R17).

The small English model's tags are wrong in known ways on video prompts; each repair names the
prompt that needs it, and ``tests/test_parsing.py`` keeps one test per rule.
"""

from __future__ import annotations

from starvid.parsing.counts import is_signed_number, number_at, number_value, starts_number
from starvid.parsing.nlp import noun_reading, verb_reading
from starvid.parsing.tokens import is_plural
from starvid.parsing.vocabulary import (
    DIRECTION_NOUNS,
    DIRECTION_WORDS,
    NOT_ACTIONS,
    QUANTIFIER_NOUNS,
    VAGUE_COUNTS,
    VERB_FOLLOWERS,
    VERB_LEMMA_FIXES,
)


class Analysis:
    """One prompt's tokens with the repairs applied: which tokens are verbs and noun heads."""

    def __init__(self, doc):
        self.doc = doc
        self.verb_lemma: dict[int, str] = {}  # token index -> verb lemma (after repairs)
        self.heads: list[int] = []  # noun head token indices in order
        self.phrase_start: dict[int, int] = {}  # head -> first token of its noun phrase
        self.quantity: dict[int, int] = {}  # head -> count from a quantifier phrase
        self.explicit: set[int] = set()  # heads that carry an explicit count
        self.repaired_nouns: set[int] = set()  # nouns the tagger called verbs
        self._find_verbs()
        self._find_heads()

    # Verbs -----------------------------------------------------------------------------------
    def _find_verbs(self) -> None:
        doc = self.doc
        for tok in doc:
            lemma = VERB_LEMMA_FIXES.get(tok.lower_, tok.lemma_.lower())
            if tok.lower_ in ("left", "right"):
                continue  # R3 "a train moving from left to right": directions, never "leave"
            if tok.pos_ == "VERB" and lemma not in NOT_ACTIONS:
                # "a parked car": a past participle before its noun describes it, it isn't done.
                if tok.dep_ == "amod" and tok.tag_ == "VBN" and tok.head.i > tok.i:
                    continue
                if self._mistagged_noun(tok):
                    self.repaired_nouns.add(tok.i)
                    continue
                if self._repeated_place(tok):
                    continue
                self.verb_lemma[tok.i] = lemma
            elif (tok.pos_ in ("NOUN", "ADJ", "PROPN") and self._mistagged_verb(tok)) or (
                self._mistagged_auxiliary(tok)
            ):
                lemma = verb_reading(tok.text)
                if lemma:
                    self.verb_lemma[tok.i] = lemma

    def _mistagged_auxiliary(self, tok) -> bool:
        """Repair R22: "a red circle moving left and two green triangles": the tagger reads
        "left" as the verb "leave" and "moving" as its auxiliary; an -ing word is an
        auxiliary only when it is one ("being", "having", "doing")."""
        return (
            tok.pos_ == "AUX"
            and tok.lower_.endswith("ing")
            and tok.lemma_.lower() not in ("be", "have", "do", "get")
        )

    def _mistagged_noun(self, tok) -> bool:
        """Repair R18: a noun the tagger called a verb.

        R18 "a bear catches fish", "three children ride bicycles": a verb form right after a
        finite verb is its object (two finite verbs in a row are not English).
        """
        return (
            tok.i > 0
            and tok.tag_ in ("VB", "VBP", "VBZ")
            and tok.i - 1 in self.verb_lemma
            and self.doc[tok.i - 1].tag_ in ("VBZ", "VBD", "VBP")
            and noun_reading(tok.text)
        )

    def _repeated_place(self, tok) -> bool:
        """R19 "monkeys swing from branch to branch": the second X of "from X to X" (a place)."""
        doc = self.doc
        return (
            tok.i >= 3
            and doc[tok.i - 1].lower_ == "to"
            and doc[tok.i - 2].lower_ == tok.lower_
            and doc[tok.i - 3].lower_ == "from"
        )

    def _mistagged_verb(self, tok) -> bool:
        """Repair R1/R6/R20: a verb the tagger called a noun or adjective.

        R1 "A red car drives past two people": "drives" tagged NOUN right after the subject.
        R1b "a dog runs and jumps over a fence": "jumps" tagged NOUN after "runs and".
        R6 "a horse galloping across a field": an -ing word after a noun, tagged NOUN/ADJ.
        R20 agreement: "three dogs bark", "a man and a woman dance", "an elephant sprays water".
        """
        doc = self.doc
        if tok.i == 0:
            return False
        prev = doc[tok.i - 1]
        nxt = doc[tok.i + 1] if tok.i + 1 < len(doc) else None
        follower_ok = nxt is None or nxt.pos_ in VERB_FOLLOWERS or nxt.lower_ in DIRECTION_WORDS
        low = tok.text.lower()
        if prev.i in self.verb_lemma:
            return False  # "chasing bubbles": the noun after a verb is its object
        noun_before = prev.pos_ in ("NOUN", "PROPN") or (
            prev.pos_ == "ADJ"  # "a red square jumping", not "a cute jumping puppy"
            and (
                nxt is None
                or nxt.pos_ not in ("NOUN", "PROPN", "ADJ")
                or nxt.lower_ in DIRECTION_WORDS
            )
            and noun_reading(prev.text)
        )
        if low.endswith("ing") and noun_before:
            # "a toddler chasing bubbles": the -ing word after a bare noun is its action.
            return True
        if prev.pos_ == "CCONJ" and tok.i >= 2 and doc[tok.i - 2].i in self.verb_lemma:
            return follower_ok and not any(c.dep_ == "det" for c in tok.children)
        if prev.pos_ not in ("NOUN", "PROPN"):
            return False
        if not follower_ok:
            # "an elephant sprays water": after "a"/"an" + a singular noun, a word in -s cannot
            # be the plural head of the same phrase, whatever follows it ("a dozen eggs" can).
            singular_det = any(
                c.lower_ in ("a", "an", "one", "each", "every") for c in prev.children
            )
            counts = prev.lemma_.lower() in QUANTIFIER_NOUNS or number_value(prev) is not None
            return singular_det and low.endswith("s") and not is_plural(prev) and not counts
        counted = False  # a number above one before the noun: a plural subject
        if any(c.dep_ in ("det", "nummod") for c in tok.children if c.i < prev.i):
            # "two hot air balloons over a field": the number agrees with the last noun.
            number = next(c for c in tok.children if c.dep_ in ("det", "nummod") and c.i < prev.i)
            if (number_value(number) or 1) > 1:
                if is_plural(tok):
                    return False
                # "three dogs bark at them", "two deer graze": a singular last word does not
                # agree with the number; the noun before it does, so that word is the verb.
                counted = True
        # Agreement: singular noun + verb in -s ("car drives"), plural noun + base ("dogs play").
        many = counted or is_plural(prev) or self._coordinated(prev)
        if low.endswith("s") and not many:
            return True
        return many and not low.endswith("s")

    def _coordinated(self, noun) -> bool:
        """Whether ``noun`` ends "X and (a) Y": a plural subject ("a man and a woman dance")."""
        doc = self.doc
        j = noun.i - 1
        while j >= 0 and doc[j].pos_ in ("DET", "ADJ", "NUM"):
            j -= 1
        return j >= 1 and doc[j].lower_ == "and" and doc[j - 1].pos_ in ("NOUN", "PROPN")

    # Noun heads ------------------------------------------------------------------------------
    def _find_heads(self) -> None:
        doc = self.doc
        for tok in doc:
            if tok.i in self.verb_lemma:
                continue
            # "to the left", "from left to right": a direction word after a preposition or
            # article is a place, whatever part of speech the tagger gave it.
            prev = doc[tok.i - 1] if tok.i > 0 else None
            is_direction = tok.lower_ in DIRECTION_NOUNS and (
                tok.dep_ == "pobj" or (prev is not None and prev.pos_ in ("ADP", "DET"))
            )
            if (
                tok.pos_ not in ("NOUN", "PROPN")
                and tok.i not in self.repaired_nouns
                and not is_direction
                and not self._noun_tagged_adjective(tok)
            ):
                continue
            nxt = doc[tok.i + 1] if tok.i + 1 < len(doc) else None
            # "hot air balloons": only the last noun of a compound run is a head.
            if nxt is not None and nxt.pos_ in ("NOUN", "PROPN") and nxt.i not in self.verb_lemma:
                continue
            if tok.lemma_.lower() in QUANTIFIER_NOUNS and nxt is not None and nxt.lower_ == "of":
                continue  # "a pair of ducks": the head is "ducks"
            if nxt is not None and nxt.tag_ == "POS":
                continue  # "a dog's tail wagging": the possessor belongs to the tail's phrase
            self.heads.append(tok.i)
            self._phrase_and_count(tok)

    def _noun_tagged_adjective(self, tok) -> bool:
        """Repair R8 "three geese flying south", "a hummingbird hovering": a noun tagged ADJ/ADV.

        An adjective right before a verb that is not itself a modifier of a later noun, after a
        determiner or number, is the noun doing that verb.
        """
        doc = self.doc
        if tok.pos_ not in ("ADJ", "ADV") or tok.i == 0 or tok.i + 1 >= len(doc):
            return False
        if tok.lower_ in DIRECTION_NOUNS or tok.lower_ in DIRECTION_WORDS:
            return False
        prev, nxt = doc[tok.i - 1], doc[tok.i + 1]
        if prev.lower_ == "the" and any(doc[h].lower_ == tok.lower_ for h in self.heads):
            return True  # R21 "..., the square moving left": an earlier noun named again
        if tok.dep_ in ("nsubj", "nsubjpass") and prev.pos_ in ("DET", "NUM", "ADJ"):
            return True  # "a golden retriever running": tagged ADV, parsed as the subject
        if nxt.i not in self.verb_lemma or nxt.dep_ == "amod":
            return False
        return prev.pos_ in ("DET", "NUM") or (prev.pos_ == "ADJ" and noun_reading(tok.text))

    def _phrase_and_count(self, head) -> None:
        doc = self.doc
        start = head.i
        while start > 0:
            prev = doc[start - 1]
            if prev.i in self.verb_lemma and not (
                prev.dep_ == "amod" or prev.tag_ == "VBG" and prev.head.i == head.i
            ):
                break
            if prev.pos_ in ("DET", "NUM", "ADJ", "NOUN", "PROPN", "VERB") and (
                prev.i not in self.heads
            ):
                start -= 1
            elif (prev.pos_ == "PUNCT" and prev.text == "-") or prev.tag_ in ("PRP$", "POS"):
                start -= 1  # "at her feet", "the dog's ball"
            elif prev.pos_ == "PUNCT" and is_signed_number(prev):
                start -= 1  # "-3 dogs", "at -10 degrees": the tagger calls "-3" punctuation
            else:
                break
        count: int | None = None
        # "a pair of ducks", "a group of three birds"
        if start >= 2 and doc[start - 1].lower_ == "of":
            quant = doc[start - 2]
            if quant.lemma_.lower() in QUANTIFIER_NOUNS:
                count = QUANTIFIER_NOUNS[quant.lemma_.lower()]
                self.explicit.add(head.i)
                start = quant.i
                while start > 0 and doc[start - 1].pos_ in ("DET", "NUM", "ADJ"):
                    start -= 1
            elif quant.lower_ in ("lots", "lot"):
                count = VAGUE_COUNTS["many"]
                start = quant.i - (1 if quant.lower_ == "lot" and quant.i > 0 else 0)
        self.phrase_start[head.i] = start
        if count is None:
            count = self._spelled_count(start, head)
        if count is None:
            count = 2 if is_plural(head) else 1
        self.quantity[head.i] = count

    def _spelled_count(self, start: int, head) -> int | None:
        """The count the words before ``head`` say: the first number ("three", "a million",
        "no"), else a vague count ("several"). A negative number ("-3 dogs", "minus three
        dogs") is kept, not marked explicit: ``build`` refuses it for a subject."""
        doc = self.doc
        for tok in doc[start : head.i]:
            if starts_number(tok):
                value = number_at(doc, tok.i, head.i)
                if value is not None:
                    if value >= 0:
                        self.explicit.add(head.i)
                    return value
            elif tok.lower_ in VAGUE_COUNTS:
                self.explicit.add(head.i)
                return VAGUE_COUNTS[tok.lower_]
        return None
