"""Driving the Studio from a real browser: Debian's Chromium as Playwright launches it, and a
free localhost port with the environment the app runs under there. Shared by the end-to-end
test (``tests/test_ui_e2e.py``) and the load test (``benchmarks/load_test.py``)."""

from __future__ import annotations

import os
import socket

CHROMIUM = "/usr/bin/chromium"
# No sandbox (containers), and nothing that reaches the network in the background.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def free_port() -> int:
    """A localhost port free at the time of asking."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(port: int) -> dict[str, str]:
    """The environment for ``python app.py`` on 127.0.0.1:``port``, offline, no analytics."""
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port))
    return env | {
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
