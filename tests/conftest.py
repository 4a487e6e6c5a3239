"""Shared test setup: offline, one torch thread, the shipped tiny backbone."""

from __future__ import annotations

import os

import pytest
import torch

# Tests never reach the network: hub loading is tested from local folders.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    # The tiny models' ops are too small to gain from intra-op threads, and threads waiting for
    # each other on a shared 2-core machine multiply the wall time (measured: 148 s -> 25 s).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def bb():
    """The shipped tiny backbone on the CPU (cached by load_backbone)."""
    from starvid.backbones import load_backbone

    return load_backbone("tiny", device="cpu")
