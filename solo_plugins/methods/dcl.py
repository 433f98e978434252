import omegaconf
from solo.utils.misc import omegaconf_select

from solo_plugins.losses import loss_options
from solo_plugins.losses.dcl import dcl_loss_terms
from solo_plugins.methods._contrastive import ContrastiveMethod, require_two_views
from solo_plugins.methods.config import require_number


class DCL(ContrastiveMethod):
    """DCL, Decoupled Contrastive Learning (https://arxiv.org/abs/2110.06848).

    Extra cfg settings:
        method_kwargs:
            proj_hidden_dim (int): hidden units of the projector.
            proj_output_dim (int): dimension of the projections.
            loss_chunk_size, forward_chunk_size (int): see ContrastiveMethod. Default null.
            projector (str): mlp (solo's SimCLR head), mlp_bn or paper (the paper
                codebase's head, BatchNorm last). Defaults to mlp.
            temperature (float): τ > 0. Defaults to 0.1.
    """

    loss_name = "dcl"
    loss_kwargs = tuple(k for k in loss_options(dcl_loss_terms) if not k.startswith("weight_"))  # DCLW weights
    weight_sigma = None

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        self.temperature: float = cfg.method_kwargs.temperature

    @staticmethod
    def add_and_assert_specific_cfg(cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        cfg = ContrastiveMethod.add_and_assert_specific_cfg(cfg)
        cfg.method_kwargs.temperature = omegaconf_select(cfg, "method_kwargs.temperature", 0.1)
        require_number(cfg, "method_kwargs.temperature", above=0)
        require_two_views(cfg, "DCL is defined for a pair of views; it has no multi-view form")
        return cfg

    def contrastive_terms(self, z1, z2):
        return dcl_loss_terms(z1, z2, temperature=self.temperature, weight_sigma=self.weight_sigma,
                              chunk_size=self.loss_chunk_size, gather_distributed=True)
