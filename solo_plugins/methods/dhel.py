import omegaconf
from solo.utils.misc import omegaconf_select

from solo_plugins.losses import loss_options
from solo_plugins.losses.dhel import dhel_loss_terms
from solo_plugins.losses.multiview import mv_dhel_loss_terms
from solo_plugins.methods._contrastive import ContrastiveMethod, require_two_views
from solo_plugins.methods.config import require_bool, require_number


class DHEL(ContrastiveMethod):
    """DHEL, the Decoupled Hyperspherical Energy Loss (https://arxiv.org/abs/2405.18045).

    Extra cfg settings:
        method_kwargs:
            proj_hidden_dim (int): hidden units of the projector.
            proj_output_dim (int): dimension of the projections.
            loss_chunk_size, forward_chunk_size (int): see ContrastiveMethod. Default null.
            projector (str): mlp (solo's SimCLR head), mlp_bn or paper (the paper
                codebase's head, BatchNorm last). Defaults to mlp.
            temperature (float): τ > 0. Defaults to 0.3 (the official default).
            include_augs (bool): also spread the second view. Defaults to True.

    With more than two crops (``data.num_large_crops`` > 2 or small crops) the loss is
    MV-DHEL over all crops (:func:`~solo_plugins.losses.mv_dhel_loss_func`).
    """

    loss_name = "dhel"
    loss_kwargs = loss_options(dhel_loss_terms)
    uniformity_name = "uniformity"

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        self.temperature: float = cfg.method_kwargs.temperature
        self.include_augs: bool = cfg.method_kwargs.include_augs

    @staticmethod
    def add_and_assert_specific_cfg(cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        cfg = ContrastiveMethod.add_and_assert_specific_cfg(cfg)
        cfg.method_kwargs.temperature = omegaconf_select(cfg, "method_kwargs.temperature", 0.3)
        cfg.method_kwargs.include_augs = omegaconf_select(cfg, "method_kwargs.include_augs", True)
        require_number(cfg, "method_kwargs.temperature", above=0)
        if not require_bool(cfg, "method_kwargs.include_augs"):
            require_two_views(cfg, "include_augs: false drops the second view's uniformity")
        return cfg

    def contrastive_terms(self, z1, z2):
        return dhel_loss_terms(z1, z2, temperature=self.temperature, include_augs=self.include_augs,
                               chunk_size=self.loss_chunk_size, gather_distributed=True)

    def multiview_terms(self, views):
        return mv_dhel_loss_terms(views, temperature=self.temperature, chunk_size=self.loss_chunk_size,
                                  gather_distributed=True)
