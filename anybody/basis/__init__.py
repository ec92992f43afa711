"""The celeb basis: PCA over the token embeddings of celebrity names, one basis per name position."""

from typing import TYPE_CHECKING

from anybody.basis.options import BasisOptions
from anybody.lazy import lazy_exports

if TYPE_CHECKING:
    from anybody.basis.builder import CelebBasis, build_basis, cached_bases, load_names

__all__ = ["BasisOptions", "CelebBasis", "build_basis", "cached_bases", "load_names"]
__getattr__ = lazy_exports(__name__, {"CelebBasis": "builder", "build_basis": "builder", "cached_bases": "builder",
                                      "load_names": "builder"})
