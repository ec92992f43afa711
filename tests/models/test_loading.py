import pytest
import torch

from anybody.errors import ModelError, UsageError, summarize
from anybody.models import describe_model, load_pipeline, model_family
from anybody.models.loading import pick_dtype
from anybody.models.tiny import build_tiny_pipeline


@pytest.mark.parametrize("name", ["tiny", "tiny-sd2", "tiny-sdxl"])
def test_each_tiny_model_is_deterministic_from_its_seed(name):
    first, second, other = (build_tiny_pipeline(name, seed) for seed in (0, 0, 1))

    def table(pipe):
        return pipe.text_encoder.get_input_embeddings().weight

    assert torch.equal(table(first), table(second))
    assert not torch.equal(table(first), table(other))
    assert torch.equal(first.unet.conv_in.weight, second.unet.conv_in.weight)


def test_tiny_loads_frozen_on_cpu_in_fp32(tiny_pipe):
    assert tiny_pipe.device.type == "cpu" and tiny_pipe.unet.dtype == torch.float32
    assert not any(p.requires_grad for p in tiny_pipe.unet.parameters())
    assert not any(p.requires_grad for p in tiny_pipe.text_encoder.parameters())
    assert model_family(tiny_pipe) == "sd1"
    assert describe_model(tiny_pipe) == "tiny"


def test_a_diffusers_folder_loads_like_the_hub(tmp_path, tiny_pipe):
    tiny_pipe.save_pretrained(tmp_path / "model")
    pipe = load_pipeline(tmp_path / "model", device="cpu")
    assert torch.equal(pipe.unet.conv_in.weight, tiny_pipe.unet.conv_in.weight)
    assert describe_model(pipe) == str(tmp_path / "model")


def test_missing_model_paths_and_non_models_say_what_to_do(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_pipeline(tmp_path / "nothing.safetensors", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a diffusers model"):
        load_pipeline(tmp_path / "empty", device="cpu")
    corrupt = tmp_path / "broken.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="could not be loaded"):
        load_pipeline(corrupt, device="cpu")


def test_an_unreachable_hub_id_names_the_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="anybody models download someone/no-such-model-anywhere"):
        load_pipeline("someone/no-such-model-anywhere", device="cpu")


def test_dtype_choices():
    assert pick_dtype(torch.device("cpu")) == torch.float32
    assert pick_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
    with pytest.raises(UsageError):
        pick_dtype(torch.device("cpu"), "int3")


def test_models_load_with_low_cpu_memory_through_accelerate_and_diffusers_does_not_warn(monkeypatch):
    """diffusers warns ("Cannot initialize model with low cpu memory usage because `accelerate` was not found")
    and loads the slow way when accelerate is missing; it is a dependency, and every load asks for it."""
    import logging

    from diffusers import DiffusionPipeline
    from diffusers.pipelines import pipeline_utils
    from diffusers.utils import logging as diffusers_logging

    asked, messages = [], []
    original = DiffusionPipeline.from_pretrained.__func__
    spy = classmethod(lambda cls, *args, **kwargs: asked.append(kwargs) or original(cls, *args, **kwargs))
    monkeypatch.setattr(DiffusionPipeline, "from_pretrained", spy)
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_warning()  # the CLI may have quieted diffusers earlier in this process
    logging.getLogger("diffusers").addHandler(handler)
    try:
        load_pipeline("tiny", device="cpu")
        assert asked and all(kwargs.get("low_cpu_mem_usage") is True for kwargs in asked)
        assert not [message for message in messages if "accelerate" in message]
        with monkeypatch.context() as without:  # the same load without accelerate: the warning is seen here
            without.setattr(pipeline_utils, "is_accelerate_available", lambda: False)
            load_pipeline("tiny", device="cpu")
        assert [message for message in messages if "`accelerate` was not found" in message]
    finally:
        logging.getLogger("diffusers").removeHandler(handler)
        diffusers_logging.set_verbosity(verbosity)


def test_a_library_reason_too_long_to_show_is_cut_between_words_and_says_so():
    """diffusers' reason for a model it cannot find, which used to end "outgoing traffic has been disab)"."""
    reason = ("Cannot load model nosuch/model: the model is not fully cached locally (Cannot find an appropriate "
              "cached snapshot folder for the specified revision on the local disk and outgoing traffic has been "
              "disabled. To enable repo look-ups and downloads online, pass 'local_files_only=False' as input.)")
    shown = summarize(OSError(reason), limit=120)
    assert len(shown) <= 120 and shown.endswith("…")
    assert reason.startswith(shown[:-1]) and reason[len(shown) - 1] == " "  # the last word shown is whole
    assert summarize(OSError("short enough"), limit=120) == "OSError: short enough"
