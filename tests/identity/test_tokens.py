import pytest
import torch

from anybody.errors import IdentityError
from anybody.identity import rewrite_prompt, token_strings, validate_name
from anybody.identity.tokens import TokenInjection, install_tokens


@pytest.mark.parametrize("name", ["alice", "Bob", "carol_2", "jean-luc"])
def test_good_names_are_kept_in_lower_case(name):
    assert validate_name(name) == name.lower()


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "empty"), ("   ", "empty"), ("../etc", "characters"), ("a/b", "characters"), ("tab\there", "characters"),
     ("x" * 41, "characters long"), ("person", "anybody's own prompts"), ("2pac", "characters")],
)
def test_bad_names_are_refused_with_the_reason(name, message):
    with pytest.raises(IdentityError, match=message):
        validate_name(name)


def test_token_strings_follow_the_diffusers_multi_vector_naming():
    assert token_strings("alice", 3) == ["<alice>", "<alice>_1", "<alice>_2"]


def test_names_are_replaced_as_whole_words_only():
    prompt = "Alice and malice, alice's cat; alice_2 is not alice"
    assert rewrite_prompt(prompt, ["alice"]) == "<alice> and malice, <alice>'s cat; alice_2 is not <alice>"
    assert rewrite_prompt("alice and bob", ["alice", "bob"], {"alice": 2, "bob": 2}) == (
        "<alice> <alice>_1 and <bob> <bob>_1"
    )


def test_injection_replaces_exactly_the_identity_rows_and_carries_gradients(tiny_pipe):
    tokenizer, encoder = tiny_pipe.tokenizer, tiny_pipe.text_encoder
    ids = install_tokens(tokenizer, encoder, token_strings("alice", 2))
    injection = TokenInjection(encoder, ids)
    values = torch.randn(2, encoder.config.hidden_size, requires_grad=True)
    prompt = tokenizer(["a photo of <alice> <alice>_1 person"], return_tensors="pt").input_ids
    injection.values = values
    looked_up = encoder.get_input_embeddings()(prompt)
    assert torch.equal(looked_up[0, 4:6], values.detach())
    assert torch.equal(looked_up[0, :4], encoder.get_input_embeddings().weight[prompt[0, :4]])
    encoder(prompt)[0].sum().backward()
    assert values.grad is not None and values.grad.abs().sum() > 0
    injection.remove()
    assert not torch.equal(encoder.get_input_embeddings()(prompt)[0, 4:6], values.detach())
