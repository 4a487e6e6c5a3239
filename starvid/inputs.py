"""Users' prompt files, read at the edge: streaming, bounded, one result per line.

A batch file is read line by line (never whole), so ``/dev/zero`` or a multi-GB file cannot
exhaust memory: a line longer than ``MAX_LINE_BYTES`` becomes an error for that line, and reading
stops with an error after ``MAX_FILE_BYTES``. Lines split on ``\\n`` only (a ``\\r\\n`` ending
is dropped too), so every input line, blank ones included, has exactly one result and outputs
stay aligned with inputs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from starvid.errors import StarVidError
from starvid.parsing import MAX_PROMPT_CHARS

MAX_LINE_BYTES = 4 * MAX_PROMPT_CHARS  # UTF-8 takes at most 4 bytes a character
MAX_FILE_BYTES = 64 * 2**20
_SKIP_CHUNK = 2**16


@contextmanager
def _open_binary(path: str):
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise StarVidError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        yield fh
    finally:
        fh.close()


def prompt_lines(path: str) -> Iterator[str | StarVidError]:
    """Each line of the UTF-8 file ``path`` (``-``: standard input) without its line ending,
    or a StarVidError for a line that is too long or not UTF-8. Raises StarVidError when the
    file passes ``MAX_FILE_BYTES``."""
    total = 0
    with _open_binary(path) as fh:
        first = True
        while True:
            try:
                raw = fh.readline(MAX_LINE_BYTES + 1)
            except OSError as exc:
                raise StarVidError(f"cannot read {path}: {exc.strerror or exc}") from exc
            if not raw:
                return
            total += len(raw)
            if not raw.endswith(b"\n") and len(raw) > MAX_LINE_BYTES:
                total = _skip_line(fh, total, path)
                yield StarVidError(f"the line is too long (more than {MAX_LINE_BYTES} bytes)")
                continue
            if total > MAX_FILE_BYTES:
                raise StarVidError(f"{path} is larger than {MAX_FILE_BYTES // 2**20} MB")
            raw = raw.removesuffix(b"\n").removesuffix(b"\r")
            if first:
                raw, first = raw.removeprefix(b"\xef\xbb\xbf"), False  # a UTF-8 BOM
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield StarVidError(f"the line is not UTF-8 text (byte {exc.start})")


def _skip_line(fh, total: int, path: str) -> int:
    """Read past the rest of an over-long line, still within the file size limit."""
    while True:
        chunk = fh.readline(_SKIP_CHUNK)
        total += len(chunk)
        if total > MAX_FILE_BYTES:
            raise StarVidError(f"{path} is larger than {MAX_FILE_BYTES // 2**20} MB")
        if not chunk or chunk.endswith(b"\n"):
            return total
