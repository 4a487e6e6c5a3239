"""The parse's data: word occurrences, subjects and the parsed prompt (plain dataclasses)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Word:
    """One word occurrence in the prompt: surface text, lemma, character span, token index."""

    text: str
    lemma: str
    start: int
    end: int
    index: int


@dataclass
class Subject:
    """A subject noun phrase: what the planner lays out and the losses steer.

    ``head`` is the head noun occurrence ("balloons" in "three hot air balloons"); ``verbs`` are
    the verb occurrences this subject does, in prompt order; ``modifiers`` the adjectives of its
    phrase ("red"); ``clause`` the character span of the text that describes it (its phrase and
    its own verbs and their complements), where direction words for this subject are found;
    ``complements`` the words right after its verbs that say how they move ("left" in "moving
    to the left", "still" in "staying still"), in prompt order.
    """

    head: Word
    count: int
    verbs: list[Word] = field(default_factory=list)
    modifiers: list[Word] = field(default_factory=list)
    phrase: tuple[int, int] = (0, 0)
    clause: tuple[int, int] = (0, 0)
    complements: list[Word] = field(default_factory=list)

    @property
    def noun(self) -> str:
        return self.head.lemma

    @property
    def text(self) -> str:
        return self.head.text

    @property
    def verb_lemmas(self) -> list[str]:
        return [v.lemma for v in self.verbs]

    def to_dict(self) -> dict:
        """The contract's subject object."""
        return {
            "noun": self.noun,
            "text": self.text,
            "count": self.count,
            "verbs": self.verb_lemmas,
        }


@dataclass
class ParsedPrompt:
    """The parse of one prompt: subjects in prompt order and scene nouns (lemmas).

    ``warnings`` say what the parse could not take at face value (control characters removed, a
    prompt that does not look like English, a subject counted zero and not drawn); they are in
    ``details()``, not in the contract's ``to_dict()``.
    """

    prompt: str
    subjects: list[Subject]
    scene: list[str]
    scene_words: list[Word] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The contract's JSON object for ``python -m starvid parse --json``."""
        return {
            "prompt": self.prompt,
            "subjects": [s.to_dict() for s in self.subjects],
            "scene": list(self.scene),
        }

    def details(self) -> dict:
        """Everything, with character spans and token indices (for the UI and debugging)."""
        return {
            "prompt": self.prompt,
            "subjects": [asdict(s) for s in self.subjects],
            "scene": self.scene_words and [asdict(w) for w in self.scene_words],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_details(cls, details: dict) -> ParsedPrompt:
        """Rebuild a parse from ``details()`` (where spaCy is missing, e.g. a bare GPU machine)."""
        subjects = [
            Subject(
                head=Word(**s["head"]),
                count=s["count"],
                verbs=[Word(**w) for w in s["verbs"]],
                modifiers=[Word(**w) for w in s["modifiers"]],
                phrase=tuple(s["phrase"]),
                clause=tuple(s["clause"]),
                complements=[Word(**w) for w in s.get("complements", [])],
            )
            for s in details["subjects"]
        ]
        scene_words = [Word(**w) for w in details["scene"] or []]
        scene = list(dict.fromkeys(w.lemma for w in scene_words))
        # Details saved before warnings existed have none.
        warnings = list(details.get("warnings", []))
        return cls(details["prompt"], subjects, scene, scene_words, warnings)
