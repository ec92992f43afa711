import pytest
import torch

from anybody.attention import (
    AttentionStore,
    face_attention_loss,
    install,
    prompt_length,
    resolution_for,
    token_positions,
)

REFERENCE_PROMPT = "a photo of the face of person"


class Injection:
    """Replace the looked-up token row at one position by a tensor (a public forward hook)."""

    def __init__(self, text_encoder, position):
        self.position = position
        self.row = None
        self.handle = text_encoder.get_input_embeddings().register_forward_hook(self.replace)

    def replace(self, module, inputs, output):
        if self.row is None:
            return output
        output = output.clone()
        output[:, self.position] = self.row
        return output


def _encode(pipe, prompt, injection=None, row=None):
    ids = pipe.tokenizer([prompt] * 2, padding="max_length", max_length=77, truncation=True,
                         return_tensors="pt").input_ids
    if injection is not None:
        injection.row = row
    try:
        return pipe.text_encoder(ids)[0]
    finally:
        if injection is not None:
            injection.row = None


def _step(pipe, target_row, reference_row, injection, tokens="all", backward=False, **options):
    """One SeFi-IDE training forward: target keys feed the UNet, the reference is scored on the same Q.

    With gradient checkpointing the backward pass re-runs the UNet's forward, so it must happen while
    the processors are still installed and the store unchanged (only `recording` may be switched off).
    """
    unet = pipe.unet
    size = unet.config.sample_size
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(2, unet.config.in_channels, size, size, generator=generator)
    target = _encode(pipe, REFERENCE_PROMPT, injection, target_row)
    reference = _encode(pipe, REFERENCE_PROMPT, injection, reference_row)
    store = AttentionStore(resolution_for(unet), keep_grad=True, reference_states=reference)
    with install(unet, store):
        unet(latents, torch.tensor([50, 900]), encoder_hidden_states=target)
        loss = face_attention_loss(store.reference_maps(), store.target_maps(), tokens, **options)
        if backward:
            recorded = len(store.records)
            store.recording = False  # the recomputation during backward must not add records
            loss.backward()
            assert len(store.records) == recorded
    return loss, store


@pytest.fixture
def injection(pipe):
    position = token_positions(pipe.tokenizer, REFERENCE_PROMPT, "person</w>")[0]
    hook = Injection(pipe.text_encoder, position)
    yield hook
    hook.handle.remove()


def _person_row(pipe):
    table = pipe.text_encoder.get_input_embeddings().weight
    return table[pipe.tokenizer.convert_tokens_to_ids("person</w>")].detach().clone()


def test_loss_is_zero_for_the_same_prompt_and_positive_otherwise(pipe, injection):
    person = _person_row(pipe)
    with torch.no_grad():
        same, store = _step(pipe, person, person, injection)
        assert same.item() == 0.0
        assert len(store.records) > 0
        different, _ = _step(pipe, person + torch.randn(person.shape, generator=torch.Generator().manual_seed(3)),
                             person, injection)
    assert different.item() > 0.0


def test_gradient_reaches_the_target_encoding_and_not_the_reference(pipe, injection):
    person = _person_row(pipe)
    target_row = (person + 0.5 * torch.randn(person.shape, generator=torch.Generator().manual_seed(4)))
    target_row.requires_grad_(True)
    reference_row = person.clone().requires_grad_(True)
    _step(pipe, target_row, reference_row, injection, backward=True)
    assert target_row.grad is not None and target_row.grad.abs().sum().item() > 0
    assert reference_row.grad is None


def test_token_options_select_the_maps_the_paper_describes():
    generator = torch.Generator().manual_seed(5)
    reference = [torch.softmax(torch.randn(16, 64, 77, generator=generator), -1) for _ in range(3)]
    target = [maps.clone() for maps in reference]
    target[1][..., 6] += 0.5  # only the identity column of one layer differs
    assert face_attention_loss(reference, target, "prompt", prompt_length=6).item() == 0.0
    assert face_attention_loss(reference, target, "identity", identity_positions=[5]).item() == 0.0
    one_column = face_attention_loss(reference, target, "identity", identity_positions=[6]).item()
    assert one_column == pytest.approx(0.25 / 3)  # MSE 0.25 in one layer of three
    everything = face_attention_loss(reference, target).item()
    assert everything == pytest.approx(0.25 / 77 / 3)
    assert face_attention_loss(reference, target, "prompt", prompt_length=7).item() == pytest.approx(0.25 / 7 / 3)
    # A two-token identity against the one reference word: both columns are compared to it.
    two = face_attention_loss(reference, target, "identity", identity_positions=[6, 7], reference_positions=[7])
    expected = torch.stack([
        torch.nn.functional.mse_loss(t[..., [6, 7]], r[..., [7]].expand(-1, -1, 2)) for r, t in zip(
            reference, target, strict=True)]).mean()
    assert two.item() == pytest.approx(expected.item())


def test_helpers_give_the_positions_the_options_need(pipe):
    assert prompt_length(pipe.tokenizer, REFERENCE_PROMPT) == 9  # start, 7 words, end
    assert token_positions(pipe.tokenizer, REFERENCE_PROMPT, "person</w>") == [7]


def test_loss_misuse_says_what_to_do():
    maps = torch.softmax(torch.randn(8, 16, 77), -1)
    with pytest.raises(RuntimeError, match="No attention maps"):
        face_attention_loss([], [])
    with pytest.raises(ValueError, match="identity token positions"):
        face_attention_loss(maps, maps, "identity")
    with pytest.raises(ValueError, match="prompt_length"):
        face_attention_loss(maps, maps, "prompt")
    with pytest.raises(ValueError, match="differ in shape"):
        face_attention_loss(maps, maps[:4])
    with pytest.raises(ValueError, match="Unknown token choice"):
        face_attention_loss(maps, maps, "some")
    with pytest.raises(RuntimeError, match="reference_states"):
        _no_reference()


def _no_reference():
    store = AttentionStore(4)
    store.record("layer", 8, torch.zeros(8, 16, 77))
    store.reference_maps()


def test_gradient_checkpointing_gives_the_same_loss_and_gradient(pipe, injection):
    unet = pipe.unet
    person = _person_row(pipe)
    start = person + 0.5 * torch.randn(person.shape, generator=torch.Generator().manual_seed(6))
    results = []
    for checkpointing in (False, True):
        if checkpointing:
            unet.enable_gradient_checkpointing()
        try:
            row = start.clone().requires_grad_(True)
            loss, _ = _step(pipe, row, person, injection, backward=True)
            results.append((loss.detach(), row.grad))
        finally:
            unet.disable_gradient_checkpointing()
    (plain_loss, plain_grad), (checkpointed_loss, checkpointed_grad) = results
    assert torch.allclose(plain_loss, checkpointed_loss, atol=1e-7)
    assert torch.allclose(plain_grad, checkpointed_grad, rtol=1e-4, atol=1e-8)
