"""Learning identities from photos (Celeb Basis)."""

from anybody.learning.train import Interrupted, LearnConfig, learn

__all__ = ["Interrupted", "LearnConfig", "learn"]
