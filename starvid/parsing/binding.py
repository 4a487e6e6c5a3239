"""Who does what: coordination groups of noun heads and the heads each verb belongs to.

Position decides where the parser's labels are unreliable (R2, R7, R10, R11, R13, R14, R16); the
parser's own subject is trusted for finite verbs, the nearest one when it gives two (R9).
"""

from __future__ import annotations

from starvid.parsing.analysis import Analysis
from starvid.parsing.tokens import noun_lemma
from starvid.parsing.types import Word
from starvid.parsing.vocabulary import DIRECTION_NOUNS, RELATIVE_PRONOUNS, SUBORDINATORS


class Clauses:
    """The noun heads of one analysed prompt: where each stands and which ones go together."""

    def __init__(self, analysis: Analysis):
        self.analysis = analysis
        self.doc = analysis.doc
        self.heads = analysis.heads
        self.refers_to = self._references()
        self.group_of = self._coordination_groups()

    # Positions -------------------------------------------------------------------------------
    def is_direction(self, i: int) -> bool:
        """Whether head ``i`` is a place word ("left", "the background"), never a subject."""
        tok = self.doc[i]
        return tok.lemma_.lower() in DIRECTION_NOUNS or tok.lower_ in DIRECTION_NOUNS

    def _before_phrase(self, i: int):
        start = self.analysis.phrase_start[i]
        return self.doc[start - 1] if start > 0 else None

    def is_pobj(self, i: int) -> bool:
        """Whether head ``i``'s phrase follows a preposition (R14: not "as", "while", ...)."""
        prev = self._before_phrase(i)
        return (
            prev is not None and prev.pos_ in ("ADP", "SCONJ") and prev.lower_ not in SUBORDINATORS
        )

    def _is_object_position(self, i: int) -> bool:
        prev = self._before_phrase(i)
        return prev is not None and prev.i in self.analysis.verb_lemma

    def is_object(self, i: int) -> bool:
        """An object of a verb or preposition (position decides; the labels are unreliable)."""
        first = self.group_of[i][0]
        prev = self._before_phrase(first)
        if prev is None:
            return False
        return self.is_pobj(first) or prev.i in self.analysis.verb_lemma

    def subject_like(self, i: int) -> bool:
        """Neither a place nor an object: a head that can do a verb it is not next to."""
        return not self.is_direction(i) and not self.is_object(i)

    def _references(self) -> dict[int, int]:
        """R21 "a red circle and a blue square, the square jumping": a definite noun phrase that
        repeats an earlier head's noun names that subject again (its verbs are the earlier
        head's; it is no new subject and no scene noun). Head -> the latest earlier head."""
        doc, refs = self.doc, {}
        for n, h in enumerate(self.heads):
            if doc[self.analysis.phrase_start[h]].lower_ != "the" or self.is_direction(h):
                continue
            lemma = noun_lemma(doc[h])
            earlier = [e for e in self.heads[:n] if e not in refs and noun_lemma(doc[e]) == lemma]
            if earlier:
                refs[h] = earlier[-1]
        return refs

    def _coordination_groups(self) -> dict[int, list[int]]:
        """R7: heads joined by "and"/"," with nothing but determiners, numbers and adjectives
        between them share a trailing verb ("a car and a bus driving"); each head maps to its
        group's list.

        R10: objects start no group: in "a man playing the piano and a woman singing" the woman
        is a new subject, not a second object.
        """
        doc, phrase_start = self.doc, self.analysis.phrase_start
        group_of: dict[int, list[int]] = {}
        current: list[int] = []
        for h in self.heads:
            if (
                current
                and h not in self.refers_to  # R21: a repeated mention joins no group
                and not self.is_pobj(h)
                and not self.is_pobj(current[0])
                and not self._is_object_position(current[0])
                and not self.is_direction(h)
                and not self.is_direction(current[-1])
            ):
                between = doc[current[-1] + 1 : phrase_start[h]]
                joined = len(between) > 0 and all(
                    t.pos_ in ("CCONJ", "PUNCT") and t.lower_ in ("and", ",", "&") for t in between
                )
                if joined:
                    current.append(h)
                    group_of[h] = current
                    continue
            current = [h]
            group_of[h] = current
        return group_of

    # Verb binding ----------------------------------------------------------------------------
    def agents_of(self, v, verbs_of: dict[int, list[Word]]) -> list[int]:
        """The heads that do verb token ``v``; ``verbs_of`` holds the verbs bound before it.

        The rules run in order and the first that applies decides.
        """
        for rule in (self._modified_noun, self._antecedent, self._passive_agent):
            agents = rule(v)
            if agents is not None:
                return agents
        agents = self._participle_owner(v, verbs_of)
        if agents is not None:
            return agents
        agents = self._parser_subject(v)
        if agents is not None:
            return agents
        return self._nearest_subject(v)

    def _modified_noun(self, v) -> list[int] | None:
        """R0 "a sleeping cat": an -ing word before its noun is done by that noun."""
        if (
            v.dep_ == "amod"
            and v.head.i in self.group_of
            and self.analysis.phrase_start[v.head.i] <= v.i < v.head.i
            and not self.is_direction(v.head.i)
        ):
            return [v.head.i]
        return None

    def _antecedent(self, v) -> list[int] | None:
        """R5 "a car that is driving away": a relative clause is done by its antecedent."""
        if not any(c.lower_ in RELATIVE_PRONOUNS and c.i < v.i for c in v.children):
            return None
        if v.head.i in self.group_of and not self.is_direction(v.head.i):
            return [v.head.i]
        before = [h for h in self.heads if h < v.i and not self.is_direction(h)]
        return [before[-1]] if before else None

    def _passive_agent(self, v) -> list[int] | None:
        """The passive's agent does the action ("a ball kicked by a boy")."""
        for c in v.children:
            if c.dep_ == "agent":
                by = [h for h in self.heads if c.i < h and self.doc[h].head.i == c.i]
                if by:
                    return by[:1]
        return None

    def _participle_owner(self, v, verbs_of: dict[int, list[Word]]) -> list[int] | None:
        """R2/R16 "three cats walking to the left and a dog jumping on the right": a participle
        right after a noun phrase belongs to that phrase, whatever the parser attached it to.

        Participles only: a finite verb trusts its parser subject first. R13: a participle after
        a prepositional object describes the main subject ("a man in a suit walking"), unless
        that subject already has its finite verb ("a bird flies above a boat sailing") or the
        object is counted ("with two horses running").
        """
        doc = self.doc
        prev = doc[v.i - 1] if v.i > 0 else None
        participle = v.tag_ in ("VBG", "VBN") or v.pos_ != "VERB"
        if not participle or prev is None or prev.i not in self.group_of:
            return None
        h = prev.i
        if self.is_direction(h):
            return None
        if self.is_pobj(h):
            main = [s for s in self.heads if s < h and self.subject_like(s)]
            finite = main and any(
                doc[w.index].tag_ in ("VBZ", "VBP", "VBD") for w in verbs_of[main[-1]]
            )
            if finite or h in self.analysis.explicit or not main:
                return [h]
            return None
        if self.is_object(h):
            return [h]
        return list(self.group_of[h])

    def _parser_subject(self, v) -> list[int] | None:
        """R9: the parser's subject, when it has one before the verb; the nearest ("five birds
        flying ... while two dogs sit" gives "sit" two subjects, only the nearest is right)."""
        subjects = [c.i for c in v.children if c.dep_ in ("nsubj",) and c.i < v.i]
        subjects = [i for i in subjects if i in self.group_of and not self.is_direction(i)]
        return list(self.group_of[max(subjects)]) if subjects else None

    def _nearest_subject(self, v) -> list[int]:
        """The nearest subject before the verb ("runs and jumps", "to catch"), or after it for a
        fronted clause (R11 "Running through the field, a dog chases a butterfly")."""
        before = [h for h in self.heads if h < v.i and self.subject_like(h)]
        if before:
            return list(self.group_of[before[-1]])
        after = [h for h in self.heads if h > v.i and self.subject_like(h)]
        return list(self.group_of[after[0]]) if after else []
