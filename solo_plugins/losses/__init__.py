"""Contrastive losses: DHEL and KCL (Koromilas et al., ICML 2024) and their baselines.

Plain torch functions of two (N, D) views, or of V >= 2 views for the multi-view losses;
no solo-learn needed.
"""

from solo_plugins.losses._common import LossTerms, loss_options
from solo_plugins.losses.dcl import DCLLoss, DCLWLoss, dcl_loss_func, dcl_loss_terms
from solo_plugins.losses.dhel import DHELLoss, dhel_loss_func, dhel_loss_terms
from solo_plugins.losses.infonce import InfoNCELoss, infonce_loss_func, infonce_loss_terms
from solo_plugins.losses.kcl import KERNELS, KCLLoss, kcl_loss_func, kcl_loss_terms
from solo_plugins.losses.multiview import (
    mv_dhel_loss_func,
    mv_dhel_loss_terms,
    mv_infonce_loss_func,
    mv_infonce_loss_terms,
    mv_kcl_loss_func,
    mv_kcl_loss_terms,
)

__all__ = [
    "KERNELS",
    "LossTerms",
    "DCLLoss",
    "DCLWLoss",
    "DHELLoss",
    "InfoNCELoss",
    "KCLLoss",
    "dcl_loss_func",
    "dcl_loss_terms",
    "dhel_loss_func",
    "dhel_loss_terms",
    "infonce_loss_func",
    "infonce_loss_terms",
    "kcl_loss_func",
    "kcl_loss_terms",
    "loss_options",
    "mv_dhel_loss_func",
    "mv_dhel_loss_terms",
    "mv_infonce_loss_func",
    "mv_infonce_loss_terms",
    "mv_kcl_loss_func",
    "mv_kcl_loss_terms",
]
