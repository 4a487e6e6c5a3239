"""Where the shipped models and configs are: ``assets/`` beside the package in a checkout, or
the ``starvid_assets`` package next to it once installed (``pip install .`` ships them)."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def assets_dir() -> Path:
    """The folder holding shapes/, tiny/ and configs/."""
    checkout = _HERE.parent / "assets"
    if (checkout / "tiny").is_dir():
        return checkout
    return _HERE.parent / "starvid_assets"


ASSETS_DIR = assets_dir()
