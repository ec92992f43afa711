"""`download_pipeline(ID)`: fetch what a diffusers pipeline needs from the Hugging Face Hub into the Hugging
Face cache, where `--model ID` then finds it without a network.

The files are chosen from the repository's file list and its model_index.json (`pipelines.pipeline_files`):
the components' configs and one set of weights each (safetensors over .bin; the fp16 variant where the
repository has one and the model will run in half precision), the tokenizers and the scheduler; no non_ema
weights, no whole-model .ckpt/.safetensors at the root, no pictures, no safety checker. The download itself is
huggingface_hub's `snapshot_download`, with its progress bars and its retries of a dropped connection; a
download that stops (Ctrl-C, a connection that stays down) keeps every file it finished, so the same command
run again fetches only what is still missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from anybody import settings
from anybody.errors import AnybodyError, ModelError
from anybody.models.catalog import (
    HubUnreachable,
    ask_hub,
    hub_cache,
    is_repo_id,
    not_a_pipeline,
    one_line,
)
from anybody.models.pipelines import INDEX, Family, folder_family, pipeline_files, pipeline_kind, read_json

HALF_DTYPES = ("fp16", "bf16", "float16", "bfloat16")


@dataclass(frozen=True)
class Downloaded:
    repo_id: str
    folder: Path
    """The snapshot folder in the Hugging Face cache."""
    files: list[str]
    kind: str
    family: Family | None
    variant: str | None
    size_bytes: int


def download_pipeline(repo_id: str, *, revision: str | None = None, dtype: str | None = None,
                      progress: bool = True) -> Downloaded:
    """Fetch the files of the pipeline `repo_id` (at `revision`, default main) that anybody loads, for a model
    that will run in `dtype` (default: what load_pipeline picks on this machine). A ModelError, before anything
    is fetched, when the Hub cannot be reached (HF_HUB_OFFLINE, no network), has no such model or revision, or
    the repository is not a Stable Diffusion pipeline. `progress=False` leaves the bars to huggingface_hub's
    own settings (HF_HUB_DISABLE_PROGRESS_BARS)."""
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import GatedRepoError

    if not is_repo_id(repo_id):
        raise ModelError(f"{repo_id!r} is not a Hub id", f"Pass one as owner/name, such as {settings.DEFAULT_MODEL}")
    try:
        info = ask_hub(repo_id, revision)
    except HubUnreachable as unreachable:
        raise ModelError(f"{repo_id} cannot be downloaded: the Hugging Face Hub cannot be reached from here "
                         f"({unreachable})", f"Run anybody models download {repo_id} where you are online (with "
                         "HF_HUB_OFFLINE unset); anybody then finds it in the Hugging Face cache (HF_HUB_CACHE) "
                         "without a network") from None
    filenames = [sibling.rfilename for sibling in info.siblings or []]
    try:
        index = None
        if INDEX in filenames:
            index = read_json(Path(hf_hub_download(repo_id, INDEX, revision=info.sha, cache_dir=hub_cache())))
        kind = require_usable(repo_id, index)
        selection = pipeline_files(filenames, index, half=runs_in_half(dtype))
        if selection.missing:
            raise ModelError(f"{repo_id} lacks files a pipeline needs ({', '.join(selection.missing)})",
                             "Choose another revision (--revision) or another model")
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=selection.files,
                                        cache_dir=hub_cache(), tqdm_class=_progress_bar() if progress else None))
    except GatedRepoError:
        raise ModelError(f"{repo_id} is gated: the Hub gives its files only to accounts that accepted its "
                         "conditions", f"Accept them on its page (https://huggingface.co/{repo_id}), log in here "
                         "with hf auth login, and run again") from None
    except (AnybodyError, KeyboardInterrupt):
        raise
    except OSError as error:
        if error.filename is not None:  # the disk's refusal, which the CLI says with the path
            raise
        raise _stopped(repo_id, error) from error
    except Exception as error:  # the network's failures, whichever library raised them
        raise _stopped(repo_id, error) from error
    size = sum((folder / name).stat().st_size for name in selection.files)
    return Downloaded(repo_id, folder, selection.files, kind, folder_family(folder, index), selection.variant, size)


def require_usable(repo_id: str, model_index: dict | None) -> str:
    """The kind of pipeline ("text-to-image" or "inpainting") a repository's model_index.json (None: it has
    none) describes; a ModelError for anything anybody cannot use (a single model, another kind of pipeline)."""
    if model_index is None:
        raise not_a_pipeline(repo_id)
    kind = pipeline_kind(model_index)
    if kind is None:
        raise ModelError(f"{repo_id} is a {model_index.get('_class_name', 'pipeline of unknown kind')}, not a "
                         "Stable Diffusion text-to-image or inpainting pipeline: anybody cannot use it",
                         "Download a Stable Diffusion 1.x, 2.x or XL pipeline, such as "
                         f"{settings.DEFAULT_MODEL} (hf download {repo_id} fetches this one anyway)")
    return kind


def _stopped(repo_id: str, error: BaseException) -> ModelError:
    return ModelError(f"The download of {repo_id} stopped ({one_line(error)})",
                      "Run the same command again: it fetches only what is still missing")


def runs_in_half(dtype: str | None) -> bool:
    """Whether the model will run in half precision: as `dtype` says, else as load_pipeline would choose on this
    machine (bf16 or fp16 on a GPU, fp32 on the CPU), which needs torch, so it is asked only then."""
    if dtype is not None:
        return dtype in HALF_DTYPES
    import torch

    from anybody.models.loading import pick_device, pick_dtype

    return pick_dtype(pick_device()) in (torch.float16, torch.bfloat16)


def _progress_bar() -> type:
    """Plain tqdm: huggingface_hub shows it even where its own bars are switched off (the CLI switches them off
    for every other command), since a download is the one place they mean something to a user."""
    from tqdm.auto import tqdm

    return tqdm
