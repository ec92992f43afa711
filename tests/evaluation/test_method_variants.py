"""Method specs: a method and its variants, as plain data, each compared method getting the same overrides."""

from __future__ import annotations

import pytest

from anybody.errors import UsageError
from anybody.evaluation.variants import parse_methods, variant_config
from anybody.learning.config import LearnConfig
from anybody.methods.sefi import ATTENTION_LOSS_WEIGHT


def test_celeb_basis_with_attention_is_celeb_basis_plus_sefis_loss():
    plain, attention = variant_config("celeb-basis"), variant_config("celeb-basis+attention")
    assert plain.attention_loss == 0 and attention.attention_loss == ATTENTION_LOSS_WEIGHT
    assert attention.method == "celeb-basis" and attention.steps == plain.steps == LearnConfig().steps


def test_shared_overrides_reach_every_method_and_defaults_stay_their_own():
    sefi, baseline = variant_config("sefi", steps=7, views=3), variant_config("textual-inversion", steps=7, views=3)
    assert (sefi.steps, sefi.views, baseline.steps, baseline.views) == (7, 3, 7, 3)
    assert sefi.learning_rate == LearnConfig.for_method("sefi").learning_rate != baseline.learning_rate


@pytest.mark.parametrize(("text", "message"), [("celeb-basis+colour", "Unknown method variant 'colour'"),
                                               ("dreambooth", "Unknown method 'dreambooth'"),
                                               ("sefi,sefi", "named twice"), (" , ", "No method")])
def test_unknown_or_repeated_methods_are_refused(text, message):
    with pytest.raises(UsageError, match=message):
        parse_methods(text)
