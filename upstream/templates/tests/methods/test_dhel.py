from solo.methods import DHEL

from .contrastive_checks import (
    check_bad_setting_is_named,
    check_contrastive_method,
    check_paper_projector,
)

LOSS_KWARGS = {"temperature": 0.3, "include_augs": True}


def test_dhel():
    check_contrastive_method(DHEL, "dhel", LOSS_KWARGS)


def test_dhel_paper_projector():
    check_paper_projector(DHEL, "dhel", LOSS_KWARGS)


def test_dhel_names_a_bad_setting():
    check_bad_setting_is_named(DHEL, "dhel", LOSS_KWARGS, "temperature", 0)
