"""Learning identities from photos: the configuration (plain data) and the loop (`train.py`)."""

from typing import TYPE_CHECKING

from anybody.errors import Interrupted
from anybody.lazy import lazy_exports
from anybody.learning.config import LearnConfig

if TYPE_CHECKING:
    from anybody.learning.train import check_names, learn

__all__ = ["Interrupted", "LearnConfig", "check_names", "learn"]
__getattr__ = lazy_exports(__name__, {"learn": "train", "check_names": "names"})
