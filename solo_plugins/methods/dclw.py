import omegaconf
from solo.utils.misc import omegaconf_select

from solo_plugins.losses import loss_options
from solo_plugins.losses.dcl import dcl_loss_terms
from solo_plugins.methods.config import require_bool, require_number
from solo_plugins.methods.dcl import DCL


class DCLW(DCL):
    """DCLW, Decoupled Contrastive Learning with the von Mises-Fisher weighting of
    positives (https://arxiv.org/abs/2110.06848).

    Extra cfg settings:
        method_kwargs:
            proj_hidden_dim (int): hidden units of the projector.
            proj_output_dim (int): dimension of the projections.
            loss_chunk_size, forward_chunk_size (int): see ContrastiveMethod. Default null.
            projector (str): mlp (solo's SimCLR head), mlp_bn or paper (the paper
                codebase's head, BatchNorm last). Defaults to mlp.
            temperature (float): τ > 0. Defaults to 0.1.
            weight_sigma (float): σ > 0 of the positive weighting. Defaults to 0.5.
            weight_grad (bool): differentiate through the weights (Yeh et al.'s reference
                code) instead of treating them as constants (lightly). Defaults to False.
    """

    loss_name = "dclw"
    loss_kwargs = loss_options(dcl_loss_terms)

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        self.weight_sigma: float = cfg.method_kwargs.weight_sigma
        self.weight_grad: bool = cfg.method_kwargs.weight_grad

    @staticmethod
    def add_and_assert_specific_cfg(cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        cfg = DCL.add_and_assert_specific_cfg(cfg)
        cfg.method_kwargs.weight_sigma = omegaconf_select(cfg, "method_kwargs.weight_sigma", 0.5)
        cfg.method_kwargs.weight_grad = omegaconf_select(cfg, "method_kwargs.weight_grad", False)
        require_number(cfg, "method_kwargs.weight_sigma", above=0)
        require_bool(cfg, "method_kwargs.weight_grad")
        return cfg

    def contrastive_terms(self, z1, z2):
        return dcl_loss_terms(z1, z2, temperature=self.temperature, weight_sigma=self.weight_sigma,
                              weight_grad=self.weight_grad, chunk_size=self.loss_chunk_size, gather_distributed=True)
