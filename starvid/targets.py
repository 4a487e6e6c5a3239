"""What a run steers and records: the parse's words as CLIP token columns, the plan's boxes.

``build_targets`` maps each subject's head noun and verbs (and, in "phrase" mode, adjectives) to
the token positions of the prompt, pairs each plan object with its subject, and returns the
``GuidanceTargets`` the losses read plus the heat-map labels ("cats", "walking", "dog#2" for a
repeated word).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from starvid.attention import token_positions
from starvid.errors import StarVidError
from starvid.guidance import GuidanceTargets
from starvid.parsing import ParsedPrompt
from starvid.plan import Plan


@dataclass
class RunTargets:
    """Token positions the run records, heat-map labels, and the losses' targets."""

    positions: list[int]
    labels: dict[str, list[int]]  # label -> columns into positions
    targets: GuidanceTargets
    warnings: list[str]
    # label -> {"kind": "noun" | "verb" | "modifier", "subject": index into the parse's
    # subjects}: the one labelling rule, which the UI reads to draw a map's boxes
    label_subjects: dict[str, dict] = field(default_factory=dict)


def unique_label(label: str, taken: dict) -> str:
    """``label``, or ``label#2``, ``label#3`` ... when it is already taken."""
    key, n = label, 2
    while key in taken:
        key, n = f"{label}#{n}", n + 1
    return key


def check_plan_matches(parsed: ParsedPrompt, plan: Plan) -> None:
    """Every plan object must name a subject of the parse, with that subject's noun."""
    subjects = parsed.subjects
    for obj in plan.objects:
        if obj.subject >= len(subjects):
            raise StarVidError(
                f"plan object '{obj.id}' refers to subject {obj.subject} but the prompt has "
                f"{len(subjects)} subject(s)"
            )
        if obj.noun != subjects[obj.subject].noun:
            raise StarVidError(
                f"plan object '{obj.id}' is a '{obj.noun}' but subject {obj.subject} of the "
                f"prompt is '{subjects[obj.subject].noun}'"
            )


def recorded_words(
    parsed: ParsedPrompt, spatial_words: str = "noun", syntax_words: str = "verb"
) -> list[tuple]:
    """``(kind, subject, Word)`` for every word a run records, in the order its maps are
    labelled: each subject's noun, its verbs, each followed ("phrase" syntax words) by its
    motion words (kind "motion": "left" after "moving"), and ("phrase" spatial words) its
    adjectives, then the scene words (recorded as negatives, subject -1)."""
    words = []
    for s, sub in enumerate(parsed.subjects):
        words.append(("noun", s, sub.head))
        for i, v in enumerate(sub.verbs):
            words.append(("verb", s, v))
            if syntax_words == "phrase":
                until = sub.verbs[i + 1].start if i + 1 < len(sub.verbs) else len(parsed.prompt)
                words.extend(("motion", s, c) for c in sub.complements if v.end <= c.start < until)
        if spatial_words == "phrase":
            words.extend(("modifier", s, m) for m in sub.modifiers)
    words.extend(("scene", -1, w) for w in parsed.scene_words)
    return words


def label_subjects(
    parsed: ParsedPrompt, spatial_words: str = "noun", syntax_words: str = "verb"
) -> dict[str, int]:
    """Heat-map label ("cats", "dog#2", "red") -> the index of the subject it belongs to: the
    labels a run's maps carry, before the run (the Studio draws a map's boxes from it)."""
    out: dict[str, int] = {}
    for kind, s, w in recorded_words(parsed, spatial_words, syntax_words):
        if kind != "scene":
            out[unique_label(w.text, out)] = s
    return out


def label_roles(
    parsed: ParsedPrompt, spatial_words: str = "noun", syntax_words: str = "verb"
) -> dict[str, tuple[str, int]]:
    """Heat-map label -> (kind, subject): "noun", "verb", "motion" or "modifier", as a run
    labels its maps (``maps.npz``), so a saved run's maps can be read back by role."""
    out: dict[str, tuple[str, int]] = {}
    for kind, s, w in recorded_words(parsed, spatial_words, syntax_words):
        if kind != "scene":
            out[unique_label(w.text, out)] = (kind, s)
    return out


def build_targets(
    tokenizer,
    parsed: ParsedPrompt,
    plan: Plan,
    spatial_words: str = "noun",
    syntax_words: str = "verb",
) -> RunTargets:
    """Map the parse's nouns/verbs to token columns and the plan's objects to subjects.

    ``spatial_words="phrase"`` also records each subject's adjectives and has the spatial loss
    pull them into the subject's boxes with its noun; ``syntax_words="phrase"`` records each
    verb's motion words ("left" in "moving left") and has the syntax loss bind the verb and
    them together (their map is the sum of the verb's and theirs).
    """
    check_plan_matches(parsed, plan)
    subjects = parsed.subjects
    words = recorded_words(parsed, spatial_words, syntax_words)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pos = token_positions(tokenizer, parsed.prompt, [(w.start, w.end) for _, _, w in words])
    notes = [str(c.message) for c in caught]
    positions = sorted({p for ps in pos for p in ps})
    col = {p: i for i, p in enumerate(positions)}
    noun_cols: list[list[int]] = [[] for _ in subjects]
    modifier_cols: list[list[int]] = [[] for _ in subjects]
    verb_cols: list[tuple[int, list[int]]] = []
    scene_cols: list[list[int]] = []
    labels: dict[str, list[int]] = {}
    label_subjects: dict[str, dict] = {}
    for (kind, s, w), ps in zip(words, pos, strict=True):
        cols = [col[p] for p in ps]
        if kind == "noun":
            noun_cols[s] = cols
        elif kind == "verb":
            verb_cols.append((s, list(cols)))
        elif kind == "motion":  # bound with the verb before it (recorded_words' order)
            verb_cols[-1][1].extend(cols)
        elif kind == "modifier":
            modifier_cols[s] += cols
        else:
            scene_cols.append(cols)
        if kind != "scene":
            label = unique_label(w.text, labels)
            labels[label] = cols
            label_subjects[label] = {"kind": kind, "subject": s}
    targets = GuidanceTargets(
        noun_cols=noun_cols,
        verb_cols=verb_cols,
        object_subject=[obj.subject for obj in plan.objects],
        boxes=plan.boxes_array(),
        extra_negative_cols=scene_cols,
        spatial_cols=(
            [n + m for n, m in zip(noun_cols, modifier_cols, strict=True)]
            if spatial_words == "phrase"
            else None
        ),
    )
    for s_idx, cols in enumerate(noun_cols):
        if not cols and s_idx in targets.object_subject:
            notes.append(f"subject {s_idx} has no token within CLIP's limit; it is not guided")
    return RunTargets(positions, labels, targets, notes, label_subjects)
