"""What DHEL, KCL, DCL and DCLW share as solo-learn methods: a projector on the backbone
and a two-view loss whose alignment and uniformity parts are logged separately."""

from typing import Any, Dict, List, Sequence

import omegaconf
import torch
import torch.nn as nn
from solo.methods.base import BaseMethod
from solo.utils.misc import omegaconf_select

from solo_plugins.losses import LossTerms
from solo_plugins.methods.config import ConfigError, require_int, require_bool


def build_projector(features_dim: int, hidden_dim: int, output_dim: int, batchnorm: bool) -> nn.Module:
    """Linear-ReLU-Linear as solo-learn's SimCLR, or Linear-BN-ReLU-Linear as the paper's
    codebase (``proj_batchnorm: True``)."""
    if batchnorm:
        return nn.Sequential(
            nn.Linear(features_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, output_dim),
        )
    return nn.Sequential(nn.Linear(features_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, output_dim))


class TwoViewContrastiveMethod(BaseMethod):
    """Base for methods whose loss compares the two large crops' projections.

    Subclasses set ``loss_name`` and ``uniformity_name`` and implement
    :meth:`contrastive_terms` and a static ``add_and_assert_specific_cfg`` that calls this
    class's one.
    """

    loss_name: str = "contrastive"
    uniformity_name: str = "uniformity"

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        kwargs = cfg.method_kwargs
        self.projector = build_projector(
            self.features_dim, kwargs.proj_hidden_dim, kwargs.proj_output_dim, kwargs.proj_batchnorm
        )

    @staticmethod
    def add_and_assert_specific_cfg(cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        cfg = BaseMethod.add_and_assert_specific_cfg(cfg)
        require_int(cfg, "method_kwargs.proj_hidden_dim", minimum=1)
        require_int(cfg, "method_kwargs.proj_output_dim", minimum=1)
        cfg.method_kwargs.proj_batchnorm = omegaconf_select(cfg, "method_kwargs.proj_batchnorm", False)
        require_bool(cfg, "method_kwargs.proj_batchnorm")
        large = omegaconf_select(cfg, "data.num_large_crops", 2)
        small = omegaconf_select(cfg, "data.num_small_crops", 0)
        if large != 2 or small != 0:
            raise ConfigError(
                f"method '{cfg.method}' compares exactly 2 views: set augmentations[*].num_crops "
                f"so that data.num_large_crops == 2 and data.num_small_crops == 0 "
                f"(got num_large_crops={large}, num_small_crops={small})"
            )
        return cfg

    @property
    def learnable_params(self) -> List[dict]:
        return super().learnable_params + [{"name": "projector", "params": self.projector.parameters()}]

    def forward(self, X: torch.Tensor) -> Dict[str, Any]:
        out = super().forward(X)
        out["z"] = self.projector(out["feats"])
        return out

    def multicrop_forward(self, X: torch.Tensor) -> Dict[str, Any]:
        out = super().multicrop_forward(X)
        out["z"] = self.projector(out["feats"])
        return out

    def contrastive_terms(self, z1: torch.Tensor, z2: torch.Tensor) -> LossTerms:
        raise NotImplementedError

    def training_step(self, batch: Sequence[Any], batch_idx: int) -> torch.Tensor:
        out = super().training_step(batch, batch_idx)
        z1, z2 = out["z"]
        parts = self.contrastive_terms(z1, z2)
        self.log_dict(
            {
                f"train_{self.loss_name}_loss": parts.loss,
                "train_alignment_term": parts.alignment,
                f"train_{self.uniformity_name}_term": parts.uniformity,
            },
            on_epoch=True,
            sync_dist=True,
        )
        return parts.loss + out["loss"]
