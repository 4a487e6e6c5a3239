"""What a prompt asks for: the facts a scorer checks, one ``SuiteItem`` per prompt.

A ``SuiteItem`` is a prompt with its task and its ``Facts``: the objects it names (noun, count,
colour, motion, action, visibility, path) and the relations between them. Items are read and
written as JSON lines; loading validates every field and that each task has the facts it is
scored on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from starvid.errors import StarVidError, first_problem

# LVD's five tasks, T2V-CompBench's detector-scored categories (and action binding, whose
# actions need a VLM), and the shapes world (scored exactly by starvid.shapes.score).
LVD_TASKS = ("numeracy", "attribution", "visibility", "dynamics", "sequential")
COMPBENCH_TASKS = (
    "generative_numeracy",
    "spatial_relationships",
    "motion_binding",
    "action_binding",
)
Task = Literal[
    "numeracy",
    "attribution",
    "visibility",
    "dynamics",
    "sequential",
    "generative_numeracy",
    "spatial_relationships",
    "motion_binding",
    "action_binding",
    "shapes",
]
TASKS: tuple[str, ...] = get_args(Task)
Direction = Literal["left", "right", "up", "down"]
Motion = Literal["left", "right", "up", "down", "jump", "still"]
Region = Literal["upper left", "upper right", "lower left", "lower right"]
Relation = Literal["left of", "right of", "above", "below"]
When = Literal["all", "first", "last"]
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")
REGIONS: tuple[str, ...] = ("upper left", "upper right", "lower left", "lower right")
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")


def article(word: str) -> str:
    """The article before `word`: "an" before a vowel, else "a"."""
    return "an" if word[:1].lower() in ("a", "e", "i", "o", "u") else "a"


class ObjectFact(BaseModel):
    """One subject of a prompt: `count` objects called `noun` (singular), and what they do.

    `motion`: where they travel over the video (the shapes world adds jump and still).
    `action`: the verb lemma they perform ("run"); checking it needs a VLM.
    `visibility`: "appears" (only in the second half) or "disappears" (only in the first).
    `path`: the regions it is in at the start, the middle and the end of the video.
    """

    model_config = ConfigDict(extra="forbid")

    noun: str = Field(min_length=1)
    count: int = Field(default=1, ge=1, le=20)
    color: str | None = None
    motion: Motion | None = None
    action: str | None = None
    visibility: Literal["appears", "disappears"] | None = None
    path: list[Region] = Field(default_factory=list)

    def phrase(self) -> str:
        """What a detector is asked to find: the noun with its colour ("red car")."""
        return f"{self.color} {self.noun}" if self.color else self.noun


class RelationFact(BaseModel):
    """`objects[subject]` is `relation` `objects[object]` in all frames, the first or the last."""

    model_config = ConfigDict(extra="forbid")

    subject: int = Field(ge=0)
    relation: Relation
    object: int = Field(ge=0)
    when: When = "all"


class Facts(BaseModel):
    """The objects a prompt names and the relations between them."""

    model_config = ConfigDict(extra="forbid")

    objects: list[ObjectFact] = Field(min_length=1)
    relations: list[RelationFact] = Field(default_factory=list)
    scene: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Facts:
        phrases = [o.phrase() for o in self.objects]
        if len(set(phrases)) != len(phrases):
            raise ValueError(f"objects must differ in noun or colour, got {phrases}")
        for rel in self.relations:
            for index in (rel.subject, rel.object):
                if index >= len(self.objects):
                    raise ValueError(f"relation names object {index} of {len(self.objects)}")
            if rel.subject == rel.object:
                raise ValueError("a relation needs two different objects")
        return self


# What each task is scored on: a task whose facts lack it cannot be scored.
_REQUIRED = {
    "visibility": lambda f: all(o.visibility for o in f.objects),
    "sequential": lambda f: all(len(o.path) == 3 for o in f.objects),
    "dynamics": lambda f: bool(f.relations) or all(o.motion in DIRECTIONS for o in f.objects),
    "spatial_relationships": lambda f: bool(f.relations),
    "motion_binding": lambda f: all(o.motion in DIRECTIONS for o in f.objects),
    "action_binding": lambda f: all(o.action for o in f.objects),
    "attribution": lambda f: all(o.color for o in f.objects),
    "shapes": lambda f: all(o.color and o.motion for o in f.objects),
}
_REQUIRED_TEXT = {
    "visibility": "every object needs 'visibility'",
    "sequential": "every object needs a 'path' of 3 regions",
    "dynamics": "every object needs a 'motion' direction, or the facts need 'relations'",
    "spatial_relationships": "the facts need 'relations'",
    "motion_binding": "every object needs a 'motion' direction",
    "action_binding": "every object needs an 'action'",
    "attribution": "every object needs a 'color'",
    "shapes": "every object needs a 'color' and a 'motion'",
}


class SuiteItem(BaseModel):
    """One prompt of a suite: `id` (stable, from the prompt), the suite, task and facts."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    suite: str = Field(min_length=1)
    task: Task
    prompt: str = Field(min_length=1)
    facts: Facts

    @model_validator(mode="after")
    def _task_has_its_facts(self) -> SuiteItem:
        check = _REQUIRED.get(self.task)
        if check and not check(self.facts):
            raise ValueError(f"task {self.task!r}: {_REQUIRED_TEXT[self.task]}")
        return self


def write_items(items: list[SuiteItem], path: str | Path) -> None:
    """Write items as JSON lines (one item a line), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(item.model_dump_json(exclude_defaults=True) + "\n" for item in items)
    path.write_text(text, encoding="utf-8")


def read_items(path: str | Path) -> list[SuiteItem]:
    """Items from a JSON-lines file; a bad line raises StarVidError naming the line and field."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise StarVidError(f"cannot read suite items from {path}: {exc.strerror}") from exc
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            items.append(SuiteItem.model_validate(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise StarVidError(f"{path}, line {number}: not JSON ({exc.msg})") from exc
        except ValidationError as exc:
            where, what = first_problem(exc)
            raise StarVidError(f"{path}, line {number}: {where or 'item'}: {what}") from exc
    return items
