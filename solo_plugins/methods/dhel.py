import omegaconf

from solo_plugins.losses import dhel_loss_terms
from solo_plugins.methods._contrastive import TwoViewContrastiveMethod
from solo_plugins.methods.config import require_bool, require_number, with_default


class DHEL(TwoViewContrastiveMethod):
    """DHEL, the Decoupled Hyperspherical Energy Loss (https://arxiv.org/abs/2405.18045).

    Extra cfg settings:
        method_kwargs:
            proj_hidden_dim (int): hidden units of the projector.
            proj_output_dim (int): dimension of the projections.
            projector (str): mlp (solo's SimCLR head), mlp_bn or paper (the paper
                codebase's head, BatchNorm last). Defaults to mlp.
            temperature (float): τ > 0. Defaults to 0.3 (the official default).
            include_augs (bool): also spread the second view. Defaults to True.
    """

    loss_name = "dhel"
    loss_kwargs = ("temperature", "include_augs")
    uniformity_name = "uniformity"

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        self.temperature: float = cfg.method_kwargs.temperature
        self.include_augs: bool = cfg.method_kwargs.include_augs

    @staticmethod
    def add_and_assert_specific_cfg(cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        cfg = TwoViewContrastiveMethod.add_and_assert_specific_cfg(cfg)
        with_default(cfg, "method_kwargs.temperature", 0.3)
        with_default(cfg, "method_kwargs.include_augs", True)
        require_number(cfg, "method_kwargs.temperature", above=0)
        require_bool(cfg, "method_kwargs.include_augs")
        return cfg

    def contrastive_terms(self, z1, z2):
        return dhel_loss_terms(z1, z2, self.temperature, self.include_augs)
