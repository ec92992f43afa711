"""The celeb basis: PCA over the token embeddings of celebrity names, one basis per name position."""

from anybody.basis.builder import BasisOptions, CelebBasis, build_basis, load_names

__all__ = ["BasisOptions", "CelebBasis", "build_basis", "load_names"]
