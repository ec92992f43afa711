from anybody.models.tokenizer import clip_tokenizer


def test_clip_tokenizer_matches_the_published_ids():
    tokenizer = clip_tokenizer()
    assert len(tokenizer) == 49408
    assert tokenizer.bos_token_id == 49406 and tokenizer.eos_token_id == 49407
    assert tokenizer("a photo of", add_special_tokens=False).input_ids == [320, 1125, 539]
    assert tokenizer.model_max_length == 77


def test_celebrity_names_split_into_word_pieces_as_clip_does():
    tokenizer = clip_tokenizer()
    assert tokenizer.tokenize("Rihanna") == ["rihanna</w>"]
    assert len(tokenizer("Sandler", add_special_tokens=False).input_ids) == 2
    assert tokenizer.tokenize("Adam") == ["adam</w>"]


def test_added_identity_tokens_stay_whole():
    tokenizer = clip_tokenizer()
    tokenizer.add_tokens(["<alice>", "<alice>_1"])
    ids = tokenizer("a photo of <alice> <alice>_1 person", add_special_tokens=False).input_ids
    assert ids[3:5] == [49408, 49409]
