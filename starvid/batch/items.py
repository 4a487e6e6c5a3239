"""What a batch runs: items read from a prompt file or a suite, and one job per item and seed.

A prompt file is UTF-8 text with one prompt a line; a suite file is JSON lines of
``starvid.evaluation.facts.SuiteItem`` (``python -m starvid suite NAME``), whose facts travel
with each item so that ``evaluate`` can score it. Every item has an id that names its folders:
a suite item keeps its own, a prompt gets a readable one from its words and a hash of its text,
so editing other lines of the file never renames it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from starvid.errors import StarVidError
from starvid.evaluation.facts import SuiteItem, read_items

# Ids become folder names: letters, digits, dots, dashes and underscores, not starting with a dot
# (hidden folders are the batch's temporary ones).
_SAFE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,119}")
SLUG_WORDS = 8  # words of a prompt in its id


@dataclass(frozen=True)
class BatchItem:
    """One prompt of a batch: its id (a folder-safe name), the prompt, and its suite item (facts
    for scoring) when it came from a suite file."""

    id: str
    prompt: str
    suite_item: SuiteItem | None = None

    def to_dict(self) -> dict:
        """Plain JSON (what ``item.json`` keeps)."""
        suite = (
            self.suite_item.model_dump(mode="json", exclude_defaults=True)
            if self.suite_item
            else None
        )
        return {"id": self.id, "prompt": self.prompt, "suite_item": suite}

    @classmethod
    def from_dict(cls, data: dict) -> BatchItem:
        """The item of ``to_dict``'s JSON (validated)."""
        suite = data.get("suite_item")
        return cls(
            id=str(data["id"]),
            prompt=str(data["prompt"]),
            suite_item=SuiteItem.model_validate(suite) if suite else None,
        )


@dataclass(frozen=True)
class Job:
    """One generation of a batch: an item at one seed."""

    item: BatchItem
    seed: int

    @property
    def name(self) -> str:
        """The job's folder name: item id and seed."""
        return f"{self.item.id}-s{self.seed}"


def read_prompt_lines(path: str | Path) -> list[str]:
    """The non-empty lines of a UTF-8 text file, stripped (a BOM is dropped), read through the
    bounded reader of ``starvid.inputs``; a line that is not UTF-8 or too long is an error
    naming it (a batch runs what it was given or nothing)."""
    from starvid.inputs import prompt_lines

    out = []
    for number, line in enumerate(prompt_lines(str(path)), start=1):
        if isinstance(line, StarVidError):
            raise StarVidError(f"{path}, line {number}: {line}")
        if line.strip():
            out.append(line.strip())
    return out


def prompt_id(prompt: str) -> str:
    """A readable, stable id for a prompt: its first words and a hash of the whole text."""
    words = re.findall(r"[a-z0-9]+", prompt.lower())[:SLUG_WORDS]
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:8]
    return "-".join([*words, digest])


def is_suite_file(path: str | Path) -> bool:
    """JSON lines (a ``.jsonl`` name, or a first non-blank character ``{``) rather than text."""
    if Path(path).suffix.lower() == ".jsonl":
        return True
    lines = read_prompt_lines(path)
    return bool(lines) and lines[0].startswith("{")


def read_batch_items(path: str | Path) -> list[BatchItem]:
    """The items of a prompt file or a suite file, in file order.

    Raises a one-line StarVidError for an unreadable or empty file, a bad suite line, an id that
    cannot name a folder, or an id (a prompt, in a text file) that appears twice.
    """
    if is_suite_file(path):
        suite = read_items(path)
        items = [BatchItem(s.id, s.prompt, s) for s in suite]
    else:
        items = [BatchItem(prompt_id(p), p) for p in read_prompt_lines(path)]
    if not items:
        raise StarVidError(f"{path} has no prompts (one prompt a line, or a suite's JSON lines)")
    first: dict[str, str] = {}
    for number, item in enumerate(items, start=1):
        place = f"item {number}"
        if not _SAFE_ID.fullmatch(item.id):
            raise StarVidError(
                f"{path}, {place}: id {item.id!r} cannot name a folder (letters, digits, '.', '-', "
                "'_'; up to 120; not starting with '.')"
            )
        if item.id in first:
            raise StarVidError(f"{path}, {place}: {item.id!r} repeats {first[item.id]}")
        first[item.id] = place
    return items


def make_jobs(items: Sequence[BatchItem], seeds: Sequence[int]) -> list[Job]:
    """Every item at every seed, item by item."""
    return [Job(item, seed) for item in items for seed in seeds]
