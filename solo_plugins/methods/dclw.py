import omegaconf

from solo_plugins.methods.config import require_number, with_default
from solo_plugins.methods.dcl import DCL


class DCLW(DCL):
    """DCLW, Decoupled Contrastive Learning with the von Mises-Fisher weighting of
    positives (https://arxiv.org/abs/2110.06848).

    Extra cfg settings:
        method_kwargs:
            proj_hidden_dim (int): hidden units of the projector.
            proj_output_dim (int): dimension of the projections.
            proj_batchnorm (bool): Linear-BN-ReLU-Linear projector. Defaults to False.
            temperature (float): τ > 0. Defaults to 0.1.
            weight_sigma (float): σ > 0 of the positive weighting. Defaults to 0.5.
    """

    loss_name = "dclw"

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        self.weight_sigma: float = cfg.method_kwargs.weight_sigma

    @staticmethod
    def add_and_assert_specific_cfg(cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        cfg = DCL.add_and_assert_specific_cfg(cfg)
        with_default(cfg, "method_kwargs.weight_sigma", 0.5)
        require_number(cfg, "method_kwargs.weight_sigma", above=0)
        return cfg
