import torch

from anybody.basis import BasisOptions, build_basis, load_names
from anybody.models.tokenizer import clip_tokenizer


def _table(seed: int = 0, width: int = 48) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(49408, width, generator=generator) * 0.02


def test_shipped_names_are_many_unique_people():
    names = load_names()
    assert len(names) >= 1000
    assert len({name.lower() for name in names}) == len(names)


def test_basis_rows_are_orthonormal_and_k_is_clamped_to_the_rank(tmp_path):
    basis = build_basis(clip_tokenizer(), _table(), cache_folder=tmp_path)
    assert basis.positions == 2 and basis.width == 48
    assert basis.rank == 48  # the table is only 48 wide: 512 components cannot exist
    for position in range(2):
        rows = basis.components[position]
        assert torch.allclose(rows @ rows.T, torch.eye(basis.rank), atol=1e-5)


def _tom_hanks(tokenizer, table: torch.Tensor) -> torch.Tensor:
    first, surname = (tokenizer(word, add_special_tokens=False).input_ids[0] for word in ("Tom", "Hanks"))
    return torch.stack([table[first], table[surname]])


def test_a_celebrity_embedding_is_reconstructed_when_the_basis_spans_the_table(tmp_path):
    tokenizer, table = clip_tokenizer(), _table(width=64)
    basis = build_basis(tokenizer, table, cache_folder=tmp_path)
    assert basis.rank == 64
    original = _tom_hanks(tokenizer, table)
    assert torch.allclose(basis.embeddings(basis.coefficients(original)), original, atol=1e-5)


def test_with_only_512_components_a_celebrity_is_its_closest_point_in_the_basis(tmp_path):
    tokenizer, table = clip_tokenizer(), _table(width=768)
    basis = build_basis(tokenizer, table, cache_folder=tmp_path)
    stats = basis.statistics["positions"]
    assert basis.rank == 512 and stats[0]["rank"] > 512 and stats[1]["rank"] > 512  # the shipped list spans more
    original = _tom_hanks(tokenizer, table)
    rebuilt = basis.embeddings(basis.coefficients(original))
    residual = original - rebuilt
    assert torch.einsum("pd,pkd->pk", residual, basis.components).abs().max() < 1e-5  # orthogonal projection
    assert ((residual.norm(dim=-1) / (original - basis.mean).norm(dim=-1)) < 0.5).all()


def test_second_build_gives_the_same_hash_and_signs_without_the_cache(tmp_path):
    tokenizer, table = clip_tokenizer(), _table()
    first = build_basis(tokenizer, table, cache_folder=tmp_path / "a")
    second = build_basis(tokenizer, table.clone(), cache_folder=tmp_path / "b")
    assert first.key == second.key
    assert torch.allclose(first.components, second.components, atol=1e-6)
    largest = first.components.abs().argmax(dim=-1, keepdim=True)
    assert (first.components.gather(-1, largest) > 0).all()


def test_the_cache_is_used_and_keyed_by_table_names_and_options(tmp_path):
    tokenizer, table = clip_tokenizer(), _table()
    first = build_basis(tokenizer, table, cache_folder=tmp_path)
    assert first.cache_path.is_file()
    again = build_basis(tokenizer, table, cache_folder=tmp_path)
    assert again.cache_path == first.cache_path and torch.equal(again.components, first.components)
    positions = build_basis(tokenizer, table, options=BasisOptions(alignment="positions"), cache_folder=tmp_path)
    other_table = build_basis(tokenizer, _table(seed=1), cache_folder=tmp_path)
    assert len({first.cache_path, positions.cache_path, other_table.cache_path}) == 3
    assert positions.key != first.key


def test_word_alignment_drops_names_whose_parts_split_and_says_why(tmp_path):
    names = ["Tom Hanks", "Adam Sandler", "Madonna", "Emma Watson", "Brad Pitt", "Will Smith"]
    basis = build_basis(clip_tokenizer(), _table(), names, cache_folder=tmp_path)
    surnames = basis.statistics["positions"][1]
    assert surnames["names_used"] == 4
    assert surnames["dropped"] == {"surname is several tokens": 1, "one-word name": 1}
    reference = build_basis(clip_tokenizer(), _table(), names, BasisOptions(alignment="positions", dedupe=False),
                            cache_folder=tmp_path)
    assert reference.statistics["positions"][1]["names_used"] == 5  # "adam" + first piece of "sandler"


def test_tokens_added_to_the_table_leave_the_basis_and_its_key_unchanged(tmp_path):
    """A pipeline that has learned someone holds their tokens in its table: learning or resuming on it again
    must find the same basis (the key is in every identity file and checkpoint)."""
    tokenizer, table = clip_tokenizer(), _table()
    before = build_basis(tokenizer, table, cache_folder=tmp_path)
    tokenizer.add_tokens(["<alice>", "<alice>_1"])
    grown = torch.cat([table, torch.randn(2, table.shape[1])])
    after = build_basis(tokenizer, grown, cache_folder=tmp_path)
    assert after.key == before.key and after.cache_path == before.cache_path
    assert torch.equal(after.components, before.components)
    other = build_basis(clip_tokenizer(), _table(seed=1), cache_folder=tmp_path)  # other rows: another cache entry
    assert other.cache_path != before.cache_path
