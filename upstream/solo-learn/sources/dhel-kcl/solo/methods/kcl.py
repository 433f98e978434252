# Copyright 2023 solo-learn development team.

# Permission is hereby granted, free of charge, to any person obtaining a copy of
# this software and associated documentation files (the "Software"), to deal in
# the Software without restriction, including without limitation the rights to use,
# copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the
# Software, and to permit persons to whom the Software is furnished to do so,
# subject to the following conditions:

# The above copyright notice and this permission notice shall be included in all copies
# or substantial portions of the Software.

# THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
# INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
# PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
# FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
# OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
# DEALINGS IN THE SOFTWARE.

from typing import Any, Dict, List, Sequence

import omegaconf
import torch
import torch.nn as nn
from solo.losses.kcl import kcl_loss_func
from solo.methods.base import BaseMethod
from solo.utils.misc import omegaconf_select


class KCL(BaseMethod):
    def __init__(self, cfg: omegaconf.DictConfig):
        """Implements KCL (https://arxiv.org/abs/2405.18045).

        Extra cfg settings:
            method_kwargs:
                proj_output_dim (int): number of dimensions of the projected features.
                proj_hidden_dim (int): number of neurons in the hidden layers of the projector.
                kernel (str): gaussian, log, imq or riesz. Defaults to gaussian.
                t (float): the kernel's parameter (> 0; for riesz the exponent, < 0).
                    Defaults to 2.0.
                gamma (float): weight of the energy (uniformity) term (>= 0). Defaults to 16.0.
        """

        super().__init__(cfg)

        self.kernel: str = cfg.method_kwargs.kernel
        self.t: float = cfg.method_kwargs.t
        self.gamma: float = cfg.method_kwargs.gamma

        proj_hidden_dim: int = cfg.method_kwargs.proj_hidden_dim
        proj_output_dim: int = cfg.method_kwargs.proj_output_dim

        # projector
        self.projector = nn.Sequential(
            nn.Linear(self.features_dim, proj_hidden_dim),
            nn.ReLU(),
            nn.Linear(proj_hidden_dim, proj_output_dim),
        )

    @staticmethod
    def add_and_assert_specific_cfg(cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        """Adds method specific default values/checks for config.

        Args:
            cfg (omegaconf.DictConfig): DictConfig object.

        Returns:
            omegaconf.DictConfig: same as the argument, used to avoid errors.
        """

        cfg = super(KCL, KCL).add_and_assert_specific_cfg(cfg)

        assert not omegaconf.OmegaConf.is_missing(cfg, "method_kwargs.proj_output_dim")
        assert not omegaconf.OmegaConf.is_missing(cfg, "method_kwargs.proj_hidden_dim")

        cfg.method_kwargs.kernel = omegaconf_select(cfg, "method_kwargs.kernel", "gaussian")
        cfg.method_kwargs.t = omegaconf_select(cfg, "method_kwargs.t", 2.0)
        cfg.method_kwargs.gamma = omegaconf_select(cfg, "method_kwargs.gamma", 16.0)
        assert cfg.method_kwargs.kernel in (
            "gaussian",
            "log",
            "imq",
            "riesz",
        ), "method_kwargs.kernel must be one of gaussian, log, imq, riesz"
        if cfg.method_kwargs.kernel == "riesz":
            assert cfg.method_kwargs.t < 0, "method_kwargs.t (the Riesz exponent) must be < 0"
        else:
            assert cfg.method_kwargs.t > 0, "method_kwargs.t must be > 0"
        assert cfg.method_kwargs.gamma >= 0, "method_kwargs.gamma must be >= 0"

        return cfg

    @property
    def learnable_params(self) -> List[dict]:
        """Adds projector parameters to the parent's learnable parameters.

        Returns:
            List[dict]: list of learnable parameters.
        """

        extra_learnable_params = [{"name": "projector", "params": self.projector.parameters()}]
        return super().learnable_params + extra_learnable_params

    def forward(self, X: torch.tensor) -> Dict[str, Any]:
        """Performs the forward pass of the backbone and the projector.

        Args:
            X (torch.Tensor): a batch of images in the tensor format.

        Returns:
            Dict[str, Any]: a dict containing the outputs of the parent and the projected features.
        """

        out = super().forward(X)
        z = self.projector(out["feats"])
        out.update({"z": z})
        return out

    def training_step(self, batch: Sequence[Any], batch_idx: int) -> torch.Tensor:
        """Training step for KCL reusing BaseMethod training step.

        Args:
            batch (Sequence[Any]): a batch of data in the format of [img_indexes, [X], Y], where
                [X] is a list of size num_crops containing batches of images.
            batch_idx (int): index of the batch.

        Returns:
            torch.Tensor: total loss composed of KCL loss and classification loss.
        """

        out = super().training_step(batch, batch_idx)
        class_loss = out["loss"]
        z1, z2 = out["z"]

        # ------- contrastive loss -------
        kcl_loss = kcl_loss_func(z1, z2, kernel=self.kernel, t=self.t, gamma=self.gamma)

        self.log("train_kcl_loss", kcl_loss, on_epoch=True, sync_dist=True)

        return kcl_loss + class_loss
