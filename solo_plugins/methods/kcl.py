import omegaconf
from solo.utils.misc import omegaconf_select

from solo_plugins.losses import loss_options
from solo_plugins.losses.kcl import KERNELS, SCALE_KERNELS, kcl_loss_terms, kernel_parameter
from solo_plugins.losses.multiview import mv_kcl_loss_terms
from solo_plugins.methods._contrastive import ContrastiveMethod
from solo_plugins.methods.config import ConfigError, require_choice, require_number


class KCL(ContrastiveMethod):
    """KCL, Kernel Contrastive Learning (https://arxiv.org/abs/2405.18045).

    Extra cfg settings:
        method_kwargs:
            proj_hidden_dim (int): hidden units of the projector.
            proj_output_dim (int): dimension of the projections.
            loss_chunk_size, forward_chunk_size (int): see ContrastiveMethod. Default null.
            projector (str): mlp (solo's SimCLR head), mlp_bn or paper (the paper
                codebase's head, BatchNorm last). Defaults to mlp.
            kernel (str): gaussian, log, imq, riesz or gaussian_riesz. Defaults to gaussian.
            t (float): the scale of the gaussian, log and imq kernels (> 0). Defaults to 2.
            s (float): the Riesz exponent of riesz (< 0) and gaussian_riesz (≠ 0); no default.
            gamma (float): γ >= 0, weight of the energy term. Defaults to 16.

    With more than two crops the loss is MV-KCL over all crops
    (:func:`~solo_plugins.losses.mv_kcl_loss_func`; its 2/V energy factor is this package's).
    """

    loss_name = "kcl"
    loss_kwargs = loss_options(kcl_loss_terms)
    uniformity_name = "energy"

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        self.kernel: str = cfg.method_kwargs.kernel
        self.t, self.s = cfg.method_kwargs.t, cfg.method_kwargs.s
        self.gamma: float = cfg.method_kwargs.gamma

    @staticmethod
    def add_and_assert_specific_cfg(cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        cfg = ContrastiveMethod.add_and_assert_specific_cfg(cfg)
        cfg.method_kwargs.kernel = omegaconf_select(cfg, "method_kwargs.kernel", "gaussian")
        cfg.method_kwargs.gamma = omegaconf_select(cfg, "method_kwargs.gamma", 16.0)
        kernel = require_choice(cfg, "method_kwargs.kernel", KERNELS)
        gamma = require_number(cfg, "method_kwargs.gamma")
        given = {k: omegaconf_select(cfg, f"method_kwargs.{k}", None) for k in ("t", "s")}
        for key, value in given.items():
            if value is not None:
                require_number(cfg, f"method_kwargs.{key}")
        if kernel not in SCALE_KERNELS and given["s"] is not None:
            given["t"] = None  # a config's t (the shipped YAMLs set it) is the scale kernels' key
        try:
            parameter = kernel_parameter(kernel, t=given["t"], s=given["s"], gamma=gamma, stacklevel=2)
        except ValueError as error:
            raise ConfigError(f"method_kwargs.{error}") from None
        # the config keeps one parameter, under the name its kernel gives it
        cfg.method_kwargs.t, cfg.method_kwargs.s = (parameter, None) if kernel in SCALE_KERNELS else (None, parameter)
        return cfg

    def contrastive_terms(self, z1, z2):
        return kcl_loss_terms(z1, z2, kernel=self.kernel, t=self.t, s=self.s, gamma=self.gamma,
                              chunk_size=self.loss_chunk_size, gather_distributed=True)

    def multiview_terms(self, views):
        return mv_kcl_loss_terms(views, kernel=self.kernel, t=self.t, s=self.s, gamma=self.gamma,
                                 chunk_size=self.loss_chunk_size, gather_distributed=True)
