"""Textual Inversion (arXiv 2208.01618), the baseline of both papers: free token vectors, started from
the class word, learned with the same loop, prompts, views and optimizer settings as Celeb Basis."""

from anybody.methods.spec import Method

METHOD = Method(
    name="textual-inversion",
    summary="the baseline: free token vectors started from the class word",
    learner="anybody.methods.textual_inversion.learner:TokenVectorLearner",
)
