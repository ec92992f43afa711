"""Which models this machine can use, and where a model the user names comes from, decided before any model
library is imported.

`locate_model(name)` says where a model comes from: a built-in tiny model, a local diffusers folder or single
checkpoint file, a Hub id whose pipeline is whole in the Hugging Face cache, or a Hub id that diffusers will
download. It needs only huggingface_hub (not torch, not diffusers), so a model that certainly cannot be had is
refused at once, in one line that says why and what fixes it:

- a path that does not exist, a folder without model_index.json, a file of another kind;
- a Hub id that is not whole in the cache and cannot be fetched. The Hub is asked once (`model_info`), and
  the id is refused when the Hub says it has no such repository, or that it holds no diffusers pipeline, or
  when the Hub cannot be reached at all (HF_HUB_OFFLINE, no network, a host name that does not resolve). That
  last case is where diffusers would fail too: its own first step is the same `model_info` call, with the
  cache as its only fallback; it just fails later, after seconds of imports. Whatever the Hub answers is
  left to diffusers, so a user who is online gets their download as before.

A Hub id whose pipeline is whole in the cache is loaded from the cache without asking the Hub anything (so it
loads offline, and at once on a network that hangs); `anybody models download ID` brings it up to date. A name
that is close to a built-in or cached model's gets "Did you mean ...?".

`list_models()` is what `anybody models` shows: the built-in models and the diffusers models in the cache
(`huggingface_hub.scan_cache_dir`, which honours HF_HOME and HF_HUB_CACHE), each with its family, kind, size on
disk and what it lacks. HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is read when asked, so that a program that
sets it after importing huggingface_hub is obeyed here too.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from anybody import settings
from anybody.errors import ModelError
from anybody.models.pipelines import (
    INDEX,
    Family,
    class_name,
    folder_family,
    folder_selection,
    pipeline_kind,
    read_index,
    read_json,
)

if TYPE_CHECKING:
    from huggingface_hub import CachedRepoInfo, CachedRevisionInfo, ModelInfo

TINY_NAMES = ("tiny", "tiny-sd2", "tiny-sdxl", "tiny-inpaint", "tiny-sd2-inpaint", "tiny-sdxl-inpaint")
INPAINT_SUFFIX = "-inpaint"
TINY_FAMILIES: dict[str, Family] = {"tiny": "sd1", "tiny-sd2": "sd2", "tiny-sdxl": "sdxl"}
"""The family of each plain built-in model; its inpainting variant (INPAINT_SUFFIX) has the same."""
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin")
LOCAL_CHOICES = "a local diffusers folder, a .safetensors file, or --model tiny"


@dataclass(frozen=True)
class ModelSource:
    """Where the model a user named comes from."""

    name: str
    kind: Literal["tiny", "folder", "file", "cache", "hub"]
    path: Path | None = None
    """The folder or file; for "cache", the pipeline's snapshot folder in the Hugging Face cache."""


@dataclass(frozen=True)
class ModelEntry:
    """One model `anybody models` lists."""

    name: str
    source: Literal["built-in", "cache"]
    kind: str
    """"text-to-image", "inpainting", or the class of anything else (a ControlNetModel, a FluxPipeline)."""
    family: Family | None
    size_bytes: int | None
    missing: list[str] = field(default_factory=list)
    path: str | None = None
    revision: str | None = None

    @property
    def usable(self) -> bool:
        return self.kind in ("text-to-image", "inpainting") and not self.missing


class HubUnreachable(Exception):
    """The Hub did not answer; the message says why."""


def locate_model(model: str | os.PathLike[str] | None = None) -> ModelSource:
    """Where `model` (default: ANYBODY_MODEL, else settings.DEFAULT_MODEL) comes from; a ModelError, before
    any model library is imported, when it cannot be had (see the module's docstring for what is checked)."""
    name = str(model) if model is not None else settings.default_model()
    if name in TINY_NAMES:
        return ModelSource(name, "tiny")
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / INDEX).is_file():
            raise ModelError(f"The folder {name} is not a diffusers model (it has no {INDEX})",
                             f"Pass the folder that holds {INDEX}, a single .safetensors/.ckpt file, or a Hub id")
        return ModelSource(name, "folder", path)
    if path.is_file():
        if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
            raise ModelError(f"{name} is not a model file anybody can read",
                             "Pass a .safetensors or .ckpt checkpoint, a diffusers folder, or a Hub id")
        return ModelSource(name, "file", path)
    if path.suffix.lower() in SINGLE_FILE_SUFFIXES or name.startswith((".", "/", "~")):
        raise ModelError(f"The model file {name} does not exist",
                         f"Check the path, or pass a Hub id such as {settings.DEFAULT_MODEL}")
    if not is_repo_id(name):
        raise ModelError(f"The model {name!r} is neither a file or folder here nor a Hub id (owner/name)",
                         _with_did_you_mean(name, f"Pass a Hub id such as {settings.DEFAULT_MODEL}, or "
                                                  f"{LOCAL_CHOICES}"))
    return _locate_on_hub(name)


def _locate_on_hub(repo_id: str) -> ModelSource:
    snapshot = cached_snapshot(repo_id)
    index = read_index(snapshot) if snapshot is not None else None
    lacking = folder_selection(snapshot, index).missing if snapshot is not None and index is not None else []
    if index is not None and not lacking:
        return ModelSource(repo_id, "cache", snapshot)
    try:
        info = ask_hub(repo_id)
    except HubUnreachable as unreachable:
        if snapshot is None:
            here = f"it is not a file or folder here, nor in the Hugging Face cache ({hub_cache()})"
        elif index is None:
            here = f"the Hugging Face cache holds it, but not as a diffusers pipeline (a {class_name(snapshot)})"
        else:
            here = f"the Hugging Face cache holds only part of it (it lacks {', '.join(lacking)})"
        raise ModelError(f"The model {repo_id} is not on this machine: {here}, and the Hub cannot be reached to "
                         f"download it ({unreachable})", _with_did_you_mean(repo_id, _download_advice(repo_id),
                                                                              HUB_ADVICE)) from None
    if INDEX not in {sibling.rfilename for sibling in info.siblings or []}:
        raise not_a_pipeline(repo_id)
    return ModelSource(repo_id, "hub")


def not_a_pipeline(repo_id: str) -> ModelError:
    return ModelError(f"{repo_id} on the Hugging Face Hub is not a diffusers pipeline (it has no {INDEX}): it "
                      "may be a single model such as a ControlNet, a VAE or a LoRA",
                      f"Pass a whole Stable Diffusion 1.x, 2.x or XL pipeline, such as {settings.DEFAULT_MODEL}")


HUB_ADVICE = "A model from the Hub is fetched where you are online with: anybody models download ID"


def _download_advice(repo_id: str) -> str:
    return (f"Download it where you are online: anybody models download {repo_id} (or hf download {repo_id}), "
            f"then run again; or pass {LOCAL_CHOICES}")


def ask_hub(repo_id: str, revision: str | None = None) -> ModelInfo:
    """The Hub's answer about a repository (its files among them). A ModelError where the Hub says it has no
    such repository or revision (or one that is private); `HubUnreachable` where the Hub does not answer."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    if hub_offline():
        raise HubUnreachable("offline mode is on: HF_HUB_OFFLINE=1")
    try:
        return HfApi().model_info(repo_id, revision=revision)
    except RepositoryNotFoundError:
        private = "If it is private, log in with hf auth login"
        raise ModelError(f"The Hugging Face Hub has no model {repo_id} (or it is private, and this machine is not "
                         "logged in)", _with_did_you_mean(repo_id, f"Check the name. {private}; or pass "
                                                                   f"{LOCAL_CHOICES}", private)) from None
    except RevisionNotFoundError:
        raise ModelError(f"The model {repo_id} on the Hugging Face Hub has no revision {revision!r}",
                         "Pass a branch, tag or commit the repository has (--revision main, for example)") from None
    except Exception as error:  # any failure to get an answer (httpx's, requests', the Hub's own 5xx)
        raise HubUnreachable(one_line(error)) from error


def hub_offline() -> bool:
    """Whether the Hub must not be asked: HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE), read now."""
    from huggingface_hub import constants

    variables = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return constants.HF_HUB_OFFLINE or any(value.upper() in constants.ENV_VARS_TRUE_VALUES for value in variables)


def hub_cache() -> Path:
    """The Hugging Face cache folder (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of a Hub model: the revision `main` points to, else the newest one; None
    where the cache has nothing of it. (huggingface_hub's scan, not `try_to_load_from_cache`: that one imports
    its whole download stack, which an offline refusal would wait half a second for.)"""
    repo = next((repo for repo in _cached_repos() if repo.repo_type == "model" and repo.repo_id == repo_id), None)
    return _chosen_revision(repo).snapshot_path if repo is not None and repo.revisions else None


def _chosen_revision(repo: CachedRepoInfo) -> CachedRevisionInfo:
    """The revision of a cached repository that `--model ID` means: the one `main` points to, else the newest."""
    return max(repo.revisions, key=lambda revision: ("main" in revision.refs, revision.last_modified))


def _cached_repos() -> frozenset[CachedRepoInfo]:
    """The repositories in the Hugging Face cache, as huggingface_hub's scan finds them (none without a cache)."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        return scan_cache_dir(hub_cache()).repos
    except CacheNotFound:
        return frozenset()


def list_models() -> tuple[list[ModelEntry], int]:
    """The built-in models, then the diffusers models in the Hugging Face cache (by name); and how many other
    models the cache holds (transformers models, language models), which are not listed."""
    entries = [ModelEntry(name, "built-in", "inpainting" if name.endswith(INPAINT_SUFFIX) else "text-to-image",
                          TINY_FAMILIES[name.removesuffix(INPAINT_SUFFIX)], None) for name in TINY_NAMES]
    others = 0
    for repo in sorted(_cached_repos(), key=lambda repo: repo.repo_id.lower()):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        revision = _chosen_revision(repo)
        entry = _cached_entry(repo.repo_id, revision.snapshot_path, repo.size_on_disk, revision.commit_hash)
        if entry is None:
            others += 1
        else:
            entries.append(entry)
    return entries, others


def _cached_entry(repo_id: str, snapshot: Path, size: int, revision: str) -> ModelEntry | None:
    """The entry of a cached snapshot, or None where it holds no diffusers model."""
    index = read_index(snapshot)
    if index is None:
        config = read_json(snapshot / "config.json") or {}
        if "_diffusers_version" not in config:
            return None
        return ModelEntry(repo_id, "cache", class_name(snapshot), None, size, [], str(snapshot), revision)
    kind = pipeline_kind(index) or str(index.get("_class_name", "unknown"))
    family = folder_family(snapshot, index) if pipeline_kind(index) else None
    return ModelEntry(repo_id, "cache", kind, family, size, folder_selection(snapshot, index).missing,
                      str(snapshot), revision)


def _with_did_you_mean(name: str, advice: str, advice_after_suggestion: str | None = None) -> str:
    """The fix for a model that cannot be had: "Did you mean X?" first where a built-in or whole cached model
    has a name close to `name` (then `advice_after_suggestion`, if given), else `advice`."""
    candidates = [*TINY_NAMES, *(entry.name for entry in list_models()[0] if entry.source == "cache" and entry.usable)]
    by_lower = {candidate.lower(): candidate for candidate in candidates}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.75)
    if not close:
        return advice
    return f"Did you mean {by_lower[close[0]]}? {advice_after_suggestion or advice}"


def is_repo_id(name: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def one_line(error: BaseException) -> str:
    """A library's whole reason on one line: its kind, and its message with the line breaks made spaces."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
