from solo.methods import KCL

from .contrastive_checks import (
    check_bad_setting_is_named,
    check_contrastive_method,
    check_paper_projector,
)

LOSS_KWARGS = {"kernel": "gaussian", "t": 2.0, "gamma": 16.0}


def test_kcl():
    check_contrastive_method(KCL, "kcl", LOSS_KWARGS)


def test_kcl_paper_projector():
    check_paper_projector(KCL, "kcl", LOSS_KWARGS)


def test_kcl_names_a_bad_setting():
    check_bad_setting_is_named(KCL, "kcl", LOSS_KWARGS, "kernel", "cosine")
