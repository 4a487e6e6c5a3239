"""The Hugging Face hub: fetch a text-to-video repo's parts (safetensors only), or find them cached.

Only the parts StarVid loads are downloaded (unet/, vae/, text_encoder/, tokenizer/, scheduler/,
model_index.json) and never a pickle file; of a repo that has fp16 and full weights, only the
variant the run's dtype needs. Offline (``HF_HUB_OFFLINE``), the local cache answers or a one-line
error says what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from starvid.errors import StarVidError

# Components that carry weights, with the file stem each library uses.
WEIGHT_PARTS = {
    "unet": "diffusion_pytorch_model",
    "vae": "diffusion_pytorch_model",
    "text_encoder": "model",
}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def hub_cached(hub_id: str, filename: str = "unet/config.json") -> bool:
    """Whether the hub repo's ``filename`` (its UNet config) is in the local cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    repo_id, _, revision = hub_id.partition("@")
    found = try_to_load_from_cache(repo_id, filename, revision=revision or None)
    return isinstance(found, str)


def hub_offline() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return bool(constants.HF_HUB_OFFLINE) or env


def fetch_hub(hub_id: str, dtype: torch.dtype) -> Path:
    """Download (or find in the cache) the parts of a hub repo we load; safetensors only."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    subdirs = ["unet", "vae", "text_encoder", "tokenizer", "scheduler"]
    allow = ["model_index.json"] + [f"{s}/*" for s in subdirs]
    ignore = [f"*{suf}" for suf in PICKLE_SUFFIXES] + ["*.msgpack", "*.h5", "*.onnx*", "*.ot"]
    repo_id, _, revision = hub_id.partition("@")
    revision = revision or None
    offline = hub_offline()
    try:
        if not offline:
            files = HfApi().list_repo_files(repo_id, revision=revision)
            ignore += unneeded_variants(files, dtype, hub_id)
        return Path(
            snapshot_download(
                repo_id,
                revision=revision,
                allow_patterns=allow,
                ignore_patterns=ignore,
                local_files_only=offline,
            )
        )
    except LocalEntryNotFoundError as exc:
        raise StarVidError(
            f"weights of {hub_id} are not in the local Hugging Face cache and the hub is offline "
            "(HF_HUB_OFFLINE): download them first (unset HF_HUB_OFFLINE and load once) "
            "or pass a local diffusers folder"
        ) from exc
    except RepositoryNotFoundError as exc:
        raise StarVidError(f"no such model on the Hugging Face hub: {repo_id}") from exc
    except (HfHubHTTPError, OSError) as exc:
        raise StarVidError(f"could not download {hub_id}: {str(exc).splitlines()[0]}") from exc


def unneeded_variants(files: list[str], dtype: torch.dtype, repo_id: str) -> list[str]:
    """Skip the weight file variant we will not load (fp16 vs full), or fail on pickle-only."""
    ignore = []
    for part, stem in WEIGHT_PARTS.items():
        names = [f for f in files if f.startswith(part + "/")]
        plain = [f for f in names if f.endswith(".safetensors") and ".fp16." not in f]
        plain += [f for f in names if f.endswith(".safetensors.index.json") and ".fp16." not in f]
        half = [f for f in names if ".fp16." in f and "safetensors" in f]
        if not plain and not half:
            if any(f.endswith(PICKLE_SUFFIXES) for f in names):
                raise StarVidError(
                    f"{repo_id}/{part} has only pickle weights (.bin/.pt/.ckpt); StarVid loads "
                    "safetensors only: name a revision that has safetensors (for example the "
                    "hub's conversion pull request, 'owner/name@refs/pr/N') or convert them once "
                    "(save_pretrained(safe_serialization=True)) and pass the local folder"
                )
            raise StarVidError(f"{repo_id} has no {part} weights")
        if plain and half:
            ignore.append(f"{part}/*.fp16.*" if dtype != torch.float16 else f"{part}/{stem}.safe*")
    return ignore


def fetch_adapter(hub_id: str) -> Path:
    """Download (or find in the cache) a motion adapter repo: its config and safetensors."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo_id, _, revision = hub_id.partition("@")
    try:
        return Path(
            snapshot_download(
                repo_id,
                revision=revision or None,
                allow_patterns=["config.json", "*.safetensors"],
                local_files_only=hub_offline(),
            )
        )
    except LocalEntryNotFoundError as exc:
        raise StarVidError(
            f"the motion adapter {hub_id} is not in the local Hugging Face cache and the hub is "
            "offline (HF_HUB_OFFLINE): download it first"
        ) from exc
    except OSError as exc:
        raise StarVidError(f"could not download {hub_id}: {str(exc).splitlines()[0]}") from exc
