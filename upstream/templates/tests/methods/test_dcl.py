from solo.methods import DCL

from .contrastive_checks import (
    check_bad_setting_is_named,
    check_contrastive_method,
    check_paper_projector,
)

LOSS_KWARGS = {"temperature": 0.1}


def test_dcl():
    check_contrastive_method(DCL, "dcl", LOSS_KWARGS, multicrop=False)


def test_dcl_paper_projector():
    check_paper_projector(DCL, "dcl", LOSS_KWARGS)


def test_dcl_names_a_bad_setting():
    check_bad_setting_is_named(DCL, "dcl", LOSS_KWARGS, "temperature", -1)
