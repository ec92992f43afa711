"""Learning identities from photos (Celeb Basis)."""

from anybody.learning.train import Interrupted, LearnConfig, check_names, learn

__all__ = ["Interrupted", "LearnConfig", "check_names", "learn"]
