"""The installable package: the core without the optional parts, and ``pip install .`` then
``starvid generate``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The extras' top modules: the Studio (gradio, plotly), the LLM planner (llama.cpp), the shapes
# world and evaluation (OpenCV).
OPTIONAL = ("gradio", "gradio_image_annotation", "plotly", "llama_cpp", "cv2")
CORE = (
    "starvid.parsing",
    "starvid.plan",
    "starvid.planning",
    "starvid.attention",
    "starvid.guidance",
    "starvid.pipelines",
    "starvid.run",
    "starvid.settings",
    "starvid.backbones",
    "starvid.cli",
)


def _python(code: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_core_imports_and_generates_without_the_studio_llama_cpp_and_opencv(tmp_path):
    """The optional packages made unimportable: the core imports, and a generation on the tiny
    backbone runs through the CLI, without touching the Studio or the shapes world."""
    code = f"""
        import importlib, json, sys
        BLOCKED = {OPTIONAL!r}

        class Absent:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)")
                return None

        sys.meta_path.insert(0, Absent())
        for name in {CORE!r}:
            importlib.import_module(name)
        from starvid.cli import main
        code = main(["generate", "a dog running", "--backbone", "tiny", "--steps", "2",
                     "--frames", "2", "--out", {str(tmp_path / "run")!r}])
        loaded = [m for m in sys.modules if m.split(".")[0] in BLOCKED
                  or m.startswith(("starvid.ui", "starvid.shapes.world", "starvid.evaluation"))]
        print(json.dumps({{"code": code, "loaded": loaded}}))
    """
    done = _python(code, ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "loaded": []}
    assert (tmp_path / "run" / "report.json").is_file()


@pytest.mark.slow
def test_pip_install_then_starvid_generate(tmp_path):
    """The wheel carries the shipped shapes model: the ``starvid`` command runs it from another
    folder than the checkout."""
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)]
    subprocess.run(build, check=True, cwd=tmp_path, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("starvid_studio-*.whl")
    install = [*pip, "install", "--no-deps", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(target)}
    cmd = [str(target / "bin" / "starvid"), "generate", "two red circles moving left"]
    done = subprocess.run(
        [*cmd, "--steps", "3", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["backbone"] == "shapes" and report["frames"] == 8
    where = [sys.executable, "-c", "import starvid.assets as a; print(a.ASSETS_DIR)"]
    found = subprocess.run(where, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert Path(found.stdout.strip()) == target / "starvid_assets"


def test_loading_the_pipelines_prints_nothing(tmp_path):
    """The command line's own messages are all a user reads: importing the pipelines (AnimateDiff
    included) prints no warning from the libraries underneath."""
    done = _python("import starvid.backbones, starvid.pipelines", ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout == ""
