"""A batch's manifest (``DIR/manifest.json``): what ran, with which settings, code and processes.

The main process writes it when a run starts (``status: "running"``, the jobs planned) and
again when every process is done (``"finished"``, each job's record: generated, skipped or
failed, by which process and host, in how many seconds). ``runs`` keeps the earlier runs of the
same folder. Its ``config`` (backbone, baseline, planner, resolved settings) must be the same
on a rerun: a folder never mixes videos made with different settings.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import starvid
from starvid import export
from starvid.errors import StarVidError

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
_LIBRARIES = ("torch", "diffusers", "transformers", "accelerate")


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=Path(starvid.__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def code_version() -> dict:
    """The package version, the git commit (and whether the tree had changes) when the package
    sits in a git checkout, and the versions of the libraries a video depends on."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    libraries = {}
    for name in _LIBRARIES:
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libraries[name] = None
    return {
        "starvid": starvid.__version__,
        "git_commit": commit,
        "git_dirty": bool(status) if status is not None else None,
        **libraries,
    }


def read_manifest(out: Path) -> dict | None:
    """The folder's manifest, or None when there is none; an unreadable one is an error."""
    path = out / MANIFEST_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StarVidError(
            f"{path} is not readable JSON ({str(exc).splitlines()[0]}): remove it to start over"
        ) from exc
    if (
        not isinstance(data, dict)
        or data.get("version") != MANIFEST_VERSION
        or "config" not in data
    ):
        raise StarVidError(f"{path} is not a batch manifest: remove it to start over")
    return data


def _added_at_default(key: str, value) -> bool:
    """A setting that a later version added, here at its default: an older folder's videos were
    made as if with it, so they still belong with the new ones."""
    from starvid.settings import GenerationSettings

    field = GenerationSettings.model_fields.get(key)
    return field is not None and not field.is_required() and field.get_default() == value


def check_same_config(previous: dict | None, config: dict, out: Path) -> None:
    """Refuse to add to a folder whose earlier run had another config, naming what differs.

    A setting missing from the earlier run's manifest (added to StarVid since) counts as the
    same when this run keeps it at its default."""
    if previous is None or previous["config"] == config:
        return
    before = previous["config"]
    diffs = []
    for key in sorted(set(before) | set(config)):
        if key == "settings":
            a, b = before.get(key) or {}, config.get(key) or {}
            diffs += [
                f"{k} {a.get(k)!r} -> {b.get(k)!r}"
                for k in sorted(set(a) | set(b))
                if a.get(k) != b.get(k) and not (k not in a and _added_at_default(k, b.get(k)))
            ]
        elif before.get(key) != config.get(key):
            diffs.append(f"{key} {before.get(key)!r} -> {config.get(key)!r}")
    if not diffs:
        return
    raise StarVidError(
        f"{out} holds a batch made with other settings ({'; '.join(diffs)}): use another --out"
    )


def write_manifest(out: Path, data: dict) -> Path:
    """Write the manifest atomically."""
    return export.write_text(
        json.dumps(data, indent=2, ensure_ascii=False) + "\n", out / MANIFEST_FILE, "manifest"
    )


def job_names(manifest: dict) -> list[str]:
    """The job folders of the manifest's last run, in order."""
    return [job["folder"] for job in manifest.get("jobs", [])]
