"""What InfoNCE, DHEL, KCL, DCL and DCLW share as solo-learn methods: a projector on the
backbone and a contrastive loss over the crops' projections whose alignment and uniformity
parts are logged separately."""

import contextlib
import warnings
from typing import Any, Dict, List, Sequence, Tuple

import omegaconf
import torch
import torch.nn as nn
from solo.methods.base import BaseMethod
from solo.utils.misc import omegaconf_select

from solo_plugins.data.resumable import ResumableSampler, mid_epoch_message, progress_in_checkpoint
from solo_plugins.distributed import equal_shards
from solo_plugins.losses._common import LossTerms
from solo_plugins.methods.chunked_forward import chunked_forward
from solo_plugins.methods.config import ConfigError, require_choice, require_chunk_size, require_int

PROJECTORS = ("mlp", "mlp_bn", "paper")


class BatchNorm1dNoBias(nn.BatchNorm1d):
    """BatchNorm1d whose shift stays at zero (the last layer of the paper codebase's head)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.bias.requires_grad_(False)


def build_projector(features_dim: int, hidden_dim: int, output_dim: int, kind: str) -> nn.Module:
    """The projection head.

    - ``mlp``: Linear-ReLU-Linear, solo-learn's SimCLR head.
    - ``mlp_bn``: Linear(no bias)-BN-ReLU-Linear.
    - ``paper``: Linear(no bias)-BN-ReLU-Linear(no bias)-BN(frozen zero bias), the head of
      AndrewAtanov/simclr-pytorch, the codebase of the paper's experiments.
    """
    if kind == "mlp":
        return nn.Sequential(nn.Linear(features_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, output_dim))
    head = [
        nn.Linear(features_dim, hidden_dim, bias=False),
        nn.BatchNorm1d(hidden_dim),
        nn.ReLU(inplace=True),
    ]
    if kind == "mlp_bn":
        return nn.Sequential(*head, nn.Linear(hidden_dim, output_dim))
    if kind == "paper":
        return nn.Sequential(*head, nn.Linear(hidden_dim, output_dim, bias=False), BatchNorm1dNoBias(output_dim))
    raise ValueError(f"projector must be one of {', '.join(PROJECTORS)}; got {kind!r}")


def loaders_give_equal_shards(loaders: Any) -> bool:
    """Whether every batch of these training loaders has the same size on every rank: a
    DataLoader that drops its last batch (solo-learn's; Lightning's DistributedSampler pads
    every rank to the same length), or a DALI iterator with the DROP policy. Anything else,
    a user's loader with ``drop_last=False`` included, may end on a ragged batch."""
    if isinstance(loaders, dict):
        loaders = list(loaders.values())
    if isinstance(loaders, (list, tuple)):
        return bool(loaders) and all(loaders_give_equal_shards(loader) for loader in loaders)
    if isinstance(loaders, torch.utils.data.DataLoader):
        if loaders.batch_size is None:  # a batch_sampler of the user's: its own drop_last, if any
            return bool(getattr(loaders.batch_sampler, "drop_last", False))
        return loaders.drop_last
    policy = getattr(loaders, "_last_batch_policy", None)  # nvidia.dali.plugin.pytorch.LastBatchPolicy
    return policy is not None and getattr(policy, "name", str(policy)).endswith("DROP")


def num_views(cfg: omegaconf.DictConfig) -> int:
    """Every crop of an image is a view of it, as in solo's SimCLR: large and small ones."""
    return omegaconf_select(cfg, "data.num_large_crops", 2) + omegaconf_select(cfg, "data.num_small_crops", 0)


def require_two_views(cfg: omegaconf.DictConfig, why: str) -> None:
    if num_views(cfg) != 2:
        raise ConfigError(
            f"method '{cfg.method}' compares exactly 2 views ({why}): set augmentations[*].num_crops "
            f"so that data.num_large_crops == 2 and data.num_small_crops == 0 (got "
            f"num_large_crops={omegaconf_select(cfg, 'data.num_large_crops', 2)}, "
            f"num_small_crops={omegaconf_select(cfg, 'data.num_small_crops', 0)}); "
            "infonce, dhel and kcl take more views"
        )


class ContrastiveMethod(BaseMethod):
    """Base for methods whose loss compares the projections of every crop of an image.

    With the two large crops of the usual setting the loss is the two-view one
    (:meth:`contrastive_terms`); with more crops, large or small, every crop is a view and
    the multi-view loss is used (:meth:`multiview_terms`). Subclasses set ``loss_name``,
    ``uniformity_name`` and ``loss_kwargs`` (the ``method_kwargs`` keys that belong to the
    loss; everything else is shared), implement those two methods (a two-view-only method
    calls :func:`require_two_views` in its config check) and a static
    ``add_and_assert_specific_cfg`` that calls this class's one.

    Options every such method takes (``method_kwargs``):
        loss_chunk_size (int): compute the loss in row tiles of this many samples, in forward
            and again in backward (memory O(N·D), same values and gradients); null (the
            default): the whole similarity block at once.
        forward_chunk_size (int): run the backbone and projector over the batch in chunks of
            this many images, GradCache's way (activation memory of one chunk; BatchNorm
            statistics per chunk); null (the default): at once.
    """

    loss_name: str = "contrastive"
    uniformity_name: str = "uniformity"
    loss_kwargs: Tuple[str, ...] = ()

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        self._epoch_sums, self._epoch_steps = None, 0
        self._equal_shards = False  # decided at fit start, from the training loader
        kwargs = cfg.method_kwargs
        self.loss_chunk_size = kwargs.loss_chunk_size
        self.forward_chunk_size = kwargs.forward_chunk_size
        self.projector = build_projector(
            self.features_dim, kwargs.proj_hidden_dim, kwargs.proj_output_dim, kwargs.projector
        )

    @staticmethod
    def add_and_assert_specific_cfg(cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        cfg = BaseMethod.add_and_assert_specific_cfg(cfg)
        require_int(cfg, "method_kwargs.proj_hidden_dim", minimum=1)
        require_int(cfg, "method_kwargs.proj_output_dim", minimum=1)
        batch_size = omegaconf_select(cfg, "optimizer.batch_size", None)
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 2):
            raise ConfigError(
                f"optimizer.batch_size must be an integer >= 2 (per device): a contrastive loss needs "
                f"negatives and the projector's BatchNorm needs 2 samples; got {batch_size!r}"
            )
        if omegaconf_select(cfg, "method_kwargs.proj_batchnorm", None) is not None:
            raise ConfigError(
                "method_kwargs.proj_batchnorm was replaced by method_kwargs.projector: "
                f"one of {', '.join(PROJECTORS)} (proj_batchnorm: True was mlp_bn)"
            )
        cfg.method_kwargs.loss_chunk_size = omegaconf_select(cfg, "method_kwargs.loss_chunk_size", None)
        require_chunk_size(cfg, "method_kwargs.loss_chunk_size")
        cfg.method_kwargs.forward_chunk_size = omegaconf_select(cfg, "method_kwargs.forward_chunk_size", None)
        require_chunk_size(cfg, "method_kwargs.forward_chunk_size")
        cfg.method_kwargs.projector = omegaconf_select(cfg, "method_kwargs.projector", "mlp")
        require_choice(cfg, "method_kwargs.projector", PROJECTORS)
        large = omegaconf_select(cfg, "data.num_large_crops", 2)
        small = omegaconf_select(cfg, "data.num_small_crops", 0)
        if not isinstance(large, int) or large < 2 or not isinstance(small, int) or small < 0:
            raise ConfigError(
                f"method '{cfg.method}' needs data.num_large_crops >= 2 and data.num_small_crops >= 0 "
                f"(set by augmentations[*].num_crops); got num_large_crops={large!r}, "
                f"num_small_crops={small!r}"
            )
        return cfg

    @property
    def learnable_params(self) -> List[dict]:
        return super().learnable_params + [{"name": "projector", "params": self.projector.parameters()}]

    def _chunked(self, X: torch.Tensor) -> bool:
        chunk = self.forward_chunk_size
        return chunk is not None and torch.is_grad_enabled() and X.shape[0] > chunk

    def _feats_and_projections(self, X: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The backbone and projector in chunks of ``forward_chunk_size`` (GradCache's memory,
        BatchNorm statistics per chunk; :mod:`solo_plugins.methods.chunked_forward`)."""
        if not self.no_channel_last:
            X = X.to(memory_format=torch.channels_last)

        def network(images):
            feats = self.backbone(images)
            return feats, self.projector(feats)

        return chunked_forward(network, [self.backbone, self.projector], X, self.forward_chunk_size)

    def forward(self, X: torch.Tensor) -> Dict[str, Any]:
        if self._chunked(X):
            feats, z = self._feats_and_projections(X)
            return {"logits": self.classifier(feats), "feats": feats, "z": z}
        out = super().forward(X)
        out["z"] = self.projector(out["feats"])
        return out

    def multicrop_forward(self, X: torch.Tensor) -> Dict[str, Any]:
        if self._chunked(X):
            feats, z = self._feats_and_projections(X)
            return {"feats": feats, "z": z}
        out = super().multicrop_forward(X)
        out["z"] = self.projector(out["feats"])
        return out

    def contrastive_terms(self, z1: torch.Tensor, z2: torch.Tensor) -> LossTerms:
        raise NotImplementedError

    def multiview_terms(self, views: List[torch.Tensor]) -> LossTerms:
        raise NotImplementedError

    def _logged_names(self) -> Tuple[str, str, str]:
        return f"train_{self.loss_name}_loss", "train_alignment_term", f"train_{self.uniformity_name}_term"

    def on_load_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self._restored_progress = progress_in_checkpoint(checkpoint)

    def on_train_start(self) -> None:
        super().on_train_start()
        loaders = self.trainer.train_dataloader
        self._equal_shards = loaders_give_equal_shards(loaders)
        # solo-learn's main_pretrain.py resumes with its own loader, which restarts the epoch
        progress = getattr(self, "_restored_progress", None)
        resumable = isinstance(getattr(loaders, "sampler", None), ResumableSampler)
        if progress is not None and not resumable and 0 < progress[1] < self.trainer.num_training_batches:
            warnings.warn(mid_epoch_message("this training loader", *progress, self.trainer.num_training_batches),
                          UserWarning)

    def training_step(self, batch: Sequence[Any], batch_idx: int) -> torch.Tensor:
        out = super().training_step(batch, batch_idx)
        views = out["z"]
        # With equal shards the negatives are gathered without exchanging sizes (no host
        # sync); otherwise a ragged last batch is gathered exactly, at one sync per step.
        with equal_shards() if self._equal_shards else contextlib.nullcontext():
            parts = self.contrastive_terms(*views) if len(views) == 2 else self.multiview_terms(views)
        values = torch.stack([parts.loss, parts.alignment, parts.uniformity]).detach()
        # Each step logs this rank's values with no collective; the epoch means are
        # accumulated on the device and averaged over ranks once, at the end of the epoch.
        self.log_dict(dict(zip(self._logged_names(), values)), on_step=True, on_epoch=False)
        if self._epoch_sums is None:
            self._epoch_sums, self._epoch_steps = torch.zeros_like(values), 0
        self._epoch_sums += values
        self._epoch_steps += 1
        return parts.loss + out["loss"]

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        self._epoch_sums, self._epoch_steps = None, 0

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        if self._epoch_sums is not None and self._epoch_steps:
            means = self._epoch_sums / self._epoch_steps
            self.log_dict({f"{name}_epoch": m for name, m in zip(self._logged_names(), means)}, sync_dist=True)
