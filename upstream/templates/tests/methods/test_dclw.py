from solo.methods import DCLW

from .contrastive_checks import (
    check_bad_setting_is_named,
    check_contrastive_method,
    check_paper_projector,
)

LOSS_KWARGS = {"temperature": 0.1, "weight_sigma": 0.5}


def test_dclw():
    check_contrastive_method(DCLW, "dclw", LOSS_KWARGS, multicrop=False)


def test_dclw_paper_projector():
    check_paper_projector(DCLW, "dclw", LOSS_KWARGS)


def test_dclw_names_a_bad_setting():
    check_bad_setting_is_named(DCLW, "dclw", LOSS_KWARGS, "weight_sigma", 0)
