"""From one analysed spaCy doc to a ParsedPrompt: bind verbs, choose subjects, collect the scene."""

from __future__ import annotations

from starvid.errors import StarVidError
from starvid.parsing.analysis import Analysis
from starvid.parsing.binding import Clauses
from starvid.parsing.tokens import noun_lemma, word_of
from starvid.parsing.types import ParsedPrompt, Subject, Word
from starvid.parsing.vocabulary import COMPLEMENT_LINKS, MOTION_COMPLEMENTS, SCENE_NOUNS


def build_parse(prompt: str, doc) -> ParsedPrompt:
    """The parse of ``prompt`` from its spaCy ``doc`` (character offsets into ``prompt``).

    A subject counted zero ("no cats", "0 dogs") is not drawn: it leaves the subjects (and the
    scene) with a warning. A negative count ("-3 dogs") is an error.
    """
    analysis = Analysis(doc)
    if not analysis.heads:
        raise StarVidError(f"no noun to lay out in the prompt {_quote(prompt)}")
    clauses = Clauses(analysis)
    verbs_of = _bind_verbs(clauses)
    chosen = _choose_subjects(clauses, verbs_of)
    named = [_subject(clauses, chosen, n, verbs_of, len(prompt)) for n in range(len(chosen))]
    symbols = [s for s in named if not _is_word(s.head.text)]
    named = [s for s in named if _is_word(s.head.text)]
    zero = [s for s in named if s.count == 0]
    subjects = [s for s in named if s.count != 0]
    if not subjects:
        # "a sunset over the ocean": lay out the first thing named
        left_out = {s.head.index for s in (*zero, *symbols)}
        first = [
            h
            for h in clauses.heads
            if not clauses.is_direction(h) and h not in left_out and _is_word(doc[h].text)
        ]
        subjects = [_subject(clauses, first[:1], 0, verbs_of, len(prompt))] if first else []
    if not subjects:
        if zero:
            raise StarVidError(f"nothing to draw: every subject counts zero in {_quote(prompt)}")
        if symbols:
            raise StarVidError(
                f"no subject to lay out: {symbols[0].head.text!r} is not a word (name it in words)"
            )
        raise StarVidError(f"no subject to lay out in the prompt {_quote(prompt)}")
    for s in subjects:
        if s.count < 0:
            raise StarVidError(f"a count cannot be negative ({s.count} {s.text!r})")
    warnings = [f"{prompt[s.phrase[0] : s.phrase[1]]!r} counts zero: not drawn" for s in zero]
    warnings += [
        f"{s.head.text!r} is not a word: left out of the plan (name it in words)" for s in symbols
    ]
    not_scene = {s.head.index for s in (*subjects, *zero)} | set(clauses.refers_to)
    heads = [h for h in analysis.heads if h not in not_scene and _is_word(doc[h].text)]
    scene_words = [word_of(doc[h], noun_lemma(doc[h])) for h in heads]
    scene = list(dict.fromkeys(w.lemma for w in scene_words))
    return ParsedPrompt(prompt, subjects, scene, scene_words, warnings)


def _is_word(text: str) -> bool:
    """Whether a token is a word: an emoji or a symbol ("🚀", "→") is no noun to lay out."""
    return any(ch.isalpha() for ch in text)


def _quote(prompt: str) -> str:
    return repr(prompt.strip()[:60])


def _bind_verbs(clauses: Clauses) -> dict[int, list[Word]]:
    """Each head's verbs, in prompt order (a verb's binding may read the verbs before it)."""
    analysis, doc = clauses.analysis, clauses.doc
    verbs_of: dict[int, list[Word]] = {h: [] for h in clauses.heads}
    for vi in sorted(analysis.verb_lemma):
        agents = [clauses.refers_to.get(h, h) for h in clauses.agents_of(doc[vi], verbs_of)]
        for h in dict.fromkeys(agents):  # R21: a repeated mention's verbs are its subject's
            verbs_of[h].append(word_of(doc[vi], analysis.verb_lemma[vi]))
    return verbs_of


def _choose_subjects(clauses: Clauses, verbs_of: dict[int, list[Word]]) -> list[int]:
    """The heads to lay out: those that do something, carry a count, or stand as a subject and
    are not a backdrop."""
    analysis, doc = clauses.analysis, clauses.doc
    return [
        h
        for h in clauses.heads
        if not clauses.is_direction(h)
        and h not in clauses.refers_to
        and (
            verbs_of[h]
            or h in analysis.explicit
            or (clauses.subject_like(h) and noun_lemma(doc[h]) not in SCENE_NOUNS)
        )
    ]


def _subject(
    clauses: Clauses, chosen: list[int], n: int, verbs_of: dict[int, list[Word]], length: int
) -> Subject:
    """The ``n``-th chosen head as a Subject; its clause runs from its group's phrase to the
    next group's (the whole prompt's start for the first)."""
    analysis, doc, group_of = clauses.analysis, clauses.doc, clauses.group_of
    h = chosen[n]
    tok = doc[h]
    start_tok = doc[analysis.phrase_start[h]]
    group_start = doc[analysis.phrase_start[group_of[h][0]]]
    later = [c for c in chosen[n + 1 :] if group_of[c] is not group_of[h]]
    clause_end = doc[analysis.phrase_start[group_of[later[0]][0]]].idx if later else length
    clause_start = 0 if n == 0 else group_start.idx
    modifiers = [
        word_of(t)
        for t in doc[analysis.phrase_start[h] : h]
        if t.pos_ == "ADJ" or t.dep_ == "compound"
    ]
    return Subject(
        head=word_of(tok, noun_lemma(tok)),
        count=analysis.quantity[h],
        verbs=verbs_of[h],
        modifiers=modifiers,
        phrase=(start_tok.idx, tok.idx + len(tok.text)),
        clause=(clause_start, max(clause_end, tok.idx + len(tok.text))),
        complements=[c for v in verbs_of[h] for c in verb_complements(doc, v.index)],
    )


def verb_complements(doc, verb: int, reach: int = 5) -> list[Word]:
    """The motion words right after the verb at token ``verb`` ("left" in "moving to the left";
    "left" and "right" in "running from left to right"), up to the first other word."""
    out = []
    for tok in doc[verb + 1 : verb + 1 + reach]:
        low = tok.lower_
        if low in MOTION_COMPLEMENTS:
            out.append(word_of(tok, low))
        elif low not in COMPLEMENT_LINKS:
            break
    return out
