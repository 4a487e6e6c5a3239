"""Where the Studio writes: one private folder per browser session, old runs deleted.

Layout: ``TMP/starvid-studio-UID/SESSION/run-*`` (the run folder ``starvid.run.save_run``
writes, the same names as the CLI's ``--out``) and ``SESSION/plan.json`` (the export). The
root and every session folder are private (mode 0700). Before each run, folders older than
``MAX_AGE_S`` go, then the oldest runs until the whole root is under ``MAX_TOTAL_BYTES``; a
session's folder goes when its browser session ends (``remove_session``). A session is named
by a hash of Gradio's session id, which the browser sends and so is never used as a path.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

MAX_AGE_S = 2 * 3600  # a run's files stay downloadable for two hours
MAX_TOTAL_BYTES = 2 * 2**30  # every session's runs together
MAX_UPLOAD = "5mb"  # Gradio's upload limit; a plan holds at most starvid.plan.MAX_PLAN_BYTES


def studio_root() -> Path:
    """The private root of every session's folders."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    root = Path(tempfile.gettempdir()) / f"starvid-studio-{uid}"
    return _private_dir(root)


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # mkdir's mode is masked by the umask, and an old folder may be open
    return path


def session_name(session_hash: str | None) -> str:
    """A safe folder name for a browser session."""
    return hashlib.sha256((session_hash or "anonymous").encode()).hexdigest()[:20]


def session_dir(session_hash: str | None, root: Path | None = None) -> Path:
    """The session's private folder (created when missing)."""
    return _private_dir((root or studio_root()) / session_name(session_hash))


def new_run_dir(session_hash: str | None, root: Path | None = None) -> Path:
    """A fresh private folder for one run, after old runs are cleaned up."""
    root = root or studio_root()
    cleanup(root)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return _private_dir(session_dir(session_hash, root) / f"run-{stamp}-{uuid.uuid4().hex[:6]}")


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def cleanup(
    root: Path,
    max_age_s: float = MAX_AGE_S,
    max_bytes: int = MAX_TOTAL_BYTES,
    now: float | None = None,
) -> list[Path]:
    """Delete run folders older than ``max_age_s``, then the oldest until the runs under
    ``root`` take at most ``max_bytes``; returns what was deleted."""
    now = time.time() if now is None else now
    runs = sorted((p for p in root.glob("*/run-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    deleted = []
    sizes = {p: _size(p) for p in runs}
    total = sum(sizes.values())
    for run in runs:
        if now - run.stat().st_mtime > max_age_s or total > max_bytes:
            shutil.rmtree(run, ignore_errors=True)
            total -= sizes[run]
            deleted.append(run)
    for session in root.iterdir():
        if session.is_dir() and now - session.stat().st_mtime > max_age_s:
            shutil.rmtree(session, ignore_errors=True)  # an abandoned session's export
            deleted.append(session)
    return deleted


def remove_session(session_hash: str | None, root: Path | None = None) -> None:
    """Delete a session's folder (its browser session ended)."""
    shutil.rmtree((root or studio_root()) / session_name(session_hash), ignore_errors=True)


def write_export(session_hash: str | None, text: str) -> Path:
    """The session's plan export, written whole (a download never sees half a file)."""
    folder = session_dir(session_hash)
    fd, tmp = tempfile.mkstemp(prefix=".plan-", suffix=".json", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    path = folder / "plan.json"
    os.replace(tmp, path)
    return path
