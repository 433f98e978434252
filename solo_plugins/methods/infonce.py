import omegaconf
from solo.utils.misc import omegaconf_select

from solo_plugins.losses.infonce import infonce_loss_terms
from solo_plugins.losses.multiview import mv_infonce_loss_terms
from solo_plugins.methods._contrastive import ContrastiveMethod
from solo_plugins.methods.config import require_number


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

    With more than two crops the loss is the authors' MV-InfoNCE over all crops
    (:func:`~solo_plugins.losses.mv_infonce_loss_func`).
    """

    loss_name = "infonce"
    loss_kwargs = ("temperature",)

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        self.temperature: float = cfg.method_kwargs.temperature

    @staticmethod
    def add_and_assert_specific_cfg(cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        cfg = ContrastiveMethod.add_and_assert_specific_cfg(cfg)
        cfg.method_kwargs.temperature = omegaconf_select(cfg, "method_kwargs.temperature", 0.2)
        require_number(cfg, "method_kwargs.temperature", above=0)
        return cfg

    def contrastive_terms(self, z1, z2):
        return infonce_loss_terms(z1, z2, self.temperature, self.loss_chunk_size)

    def multiview_terms(self, views):
        return mv_infonce_loss_terms(views, self.temperature, self.loss_chunk_size)
