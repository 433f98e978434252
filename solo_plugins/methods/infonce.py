import omegaconf
from solo.utils.misc import omegaconf_select

from solo_plugins.losses import loss_options
from solo_plugins.losses.infonce import infonce_loss_terms
from solo_plugins.losses.multiview import mv_infonce_loss_terms
from solo_plugins.methods._contrastive import ContrastiveMethod, num_views
from solo_plugins.methods.config import ConfigError, require_bool, require_number


class InfoNCE(ContrastiveMethod):
    """InfoNCE (SimCLR's NT-Xent) on the same projector and training step as DHEL, KCL and
    DCL, so that a comparison differs in the loss alone. solo-learn's own ``simclr`` is
    the same loss on solo's projector.

    Extra cfg settings:
        method_kwargs:
            proj_hidden_dim (int): hidden units of the projector.
            proj_output_dim (int): dimension of the projections.
            loss_chunk_size, forward_chunk_size (int): see ContrastiveMethod. Default null.
            projector (str): mlp (solo's SimCLR head), mlp_bn or paper (the paper
                codebase's head, BatchNorm last). Defaults to mlp.
            temperature (float): τ > 0. Defaults to 0.2.
            multiview (bool): the authors' MV-InfoNCE over all crops
                (:func:`~solo_plugins.losses.mv_infonce_loss_func`), a different objective from
                NT-Xent, needed for more than two crops. Defaults to False: exactly two crops.
    """

    loss_name = "infonce"
    loss_kwargs = (*loss_options(infonce_loss_terms), "multiview")  # multiview picks the loss

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        self.temperature: float = cfg.method_kwargs.temperature
        self.multiview: bool = cfg.method_kwargs.multiview

    @staticmethod
    def add_and_assert_specific_cfg(cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        cfg = ContrastiveMethod.add_and_assert_specific_cfg(cfg)
        cfg.method_kwargs.temperature = omegaconf_select(cfg, "method_kwargs.temperature", 0.2)
        require_number(cfg, "method_kwargs.temperature", above=0)
        cfg.method_kwargs.multiview = omegaconf_select(cfg, "method_kwargs.multiview", False)
        require_bool(cfg, "method_kwargs.multiview")
        if num_views(cfg) != 2 and not cfg.method_kwargs.multiview:
            raise ConfigError(
                f"method 'infonce' is SimCLR's NT-Xent over exactly 2 crops; this config has {num_views(cfg)} "
                "(data.num_large_crops + data.num_small_crops). For the authors' multi-view loss over all crops "
                "(MV-InfoNCE, a different objective) set method_kwargs.multiview: true")
        return cfg

    def contrastive_terms(self, z1, z2):
        if self.multiview:
            return self.multiview_terms([z1, z2])
        return infonce_loss_terms(z1, z2, temperature=self.temperature, chunk_size=self.loss_chunk_size,
                                  gather_distributed=True)

    def multiview_terms(self, views):
        return mv_infonce_loss_terms(views, temperature=self.temperature, chunk_size=self.loss_chunk_size,
                                     gather_distributed=True)
