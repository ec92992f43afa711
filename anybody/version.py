"""anybody's version, in a module of its own so that the code recording it in files needs no package import."""

__version__ = "0.1.0"
