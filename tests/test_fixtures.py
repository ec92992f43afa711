"""The shared tiny pipelines are put back after each test: a test that adds tokens, rewrites rows, hooks the
text encoder or installs processors leaves nothing behind for the next one."""

from __future__ import annotations

import torch

from anybody.attention import AttentionStore, install
from anybody.identity.tokens import TokenInjection, install_tokens
from tests.conftest import Snapshot


def test_a_snapshot_puts_back_tokens_rows_hooks_and_processors(tiny_pipeline):
    pipe = tiny_pipeline("tiny")
    snapshot = Snapshot(pipe)
    vocabulary, table = len(pipe.tokenizer), pipe.text_encoder.get_input_embeddings().weight.detach().clone()
    processors = {name: type(processor) for name, processor in pipe.unet.attn_processors.items()}

    width = table.shape[1]
    install_tokens(pipe.tokenizer, pipe.text_encoder, ["<zed>", "<zed>_1"], torch.ones(2, width))
    install_tokens(pipe.tokenizer, pipe.text_encoder, ["person"], torch.zeros(1, width))  # an existing row
    TokenInjection(pipe.text_encoder, [0])
    install(pipe.unet, AttentionStore())
    assert len(pipe.tokenizer) == vocabulary + 2

    snapshot.restore(pipe)
    assert len(pipe.tokenizer) == vocabulary and "<zed>" not in pipe.tokenizer.get_vocab()
    assert torch.equal(pipe.text_encoder.get_input_embeddings().weight, table)
    assert pipe.text_encoder.config.vocab_size == table.shape[0]
    assert not pipe.text_encoder.get_input_embeddings()._forward_hooks
    assert {name: type(processor) for name, processor in pipe.unet.attn_processors.items()} == processors
