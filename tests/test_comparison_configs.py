"""The shipped comparison differs in the loss alone: same network, projector, optimizer,
scheduler, data and augmentations for infonce, dcl, dclw, dhel and kcl on every dataset."""

import os

import pytest
from omegaconf import OmegaConf

pytest.importorskip("solo.methods")

from solo_plugins.methods import METHODS  # noqa: E402
from tests.conftest import CONFIGS, SWEEP_CONFIGS, compose  # noqa: E402

COMPARED = ("infonce", "dcl", "dclw", "dhel", "kcl")
DATASETS = sorted(os.listdir(os.path.join(CONFIGS, "pretrain")))
PAPER_SETUPS = ("cifar10", "cifar100", "stl10", "imagenet100")


def _shared_part(dataset: str, method: str) -> dict:
    cfg = OmegaConf.to_container(compose("pretrain", dataset, f"{method}.yaml"), resolve=True)
    assert cfg.pop("method") == method
    cfg.pop("name")
    for key in METHODS[method].loss_kwargs:
        cfg["method_kwargs"].pop(key, None)
    return cfg


@pytest.mark.parametrize("dataset", DATASETS)
def test_compared_methods_differ_only_in_the_loss(dataset):
    reference = _shared_part(dataset, COMPARED[0])
    for method in COMPARED[1:]:
        other = _shared_part(dataset, method)
        assert other == reference, f"configs/pretrain/{dataset}/{method}.yaml differs from infonce beyond its loss"


@pytest.mark.parametrize("dataset", DATASETS)
def test_loss_keys_are_all_the_method_kwargs_that_differ(dataset):
    """Every method_kwargs key outside the projector is declared as the loss's own."""
    for method in COMPARED:
        keys = set(compose("pretrain", dataset, f"{method}.yaml").method_kwargs)
        assert keys - set(METHODS[method].loss_kwargs) == {"proj_hidden_dim", "proj_output_dim", "projector"}


@pytest.mark.parametrize("dataset", PAPER_SETUPS)
def test_paper_setups_use_the_paper_codebase_head_and_optimizer(dataset):
    for method in COMPARED:
        cfg = compose("pretrain", dataset, f"{method}.yaml")
        assert cfg.method_kwargs.projector == "paper"
        assert cfg.backbone.name == "resnet18" and cfg.max_epochs == 200
        assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.optimizer.weight_decay) == ("sgd", 1.0, 1e-6)


# the latent-recovery studies' configs are not comparisons (test_identifiability.py, test_converged.py)
@pytest.mark.parametrize("name", SWEEP_CONFIGS)
def test_every_sweep_compares_the_fair_methods(name):
    cfg = compose("sweep", "", name, [f"config_dir={CONFIGS}"])
    assert cfg.methods[0] == "infonce" and set(cfg.methods) <= set(COMPARED) | {"simclr"}
    assert {"infonce", "dhel", "kcl"} <= set(cfg.methods)


MULTI_VIEW = ("infonce", "dhel", "kcl")


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "imagenet100", "digits"])
def test_four_view_configs_are_the_two_view_ones_with_four_crops(dataset):
    for method in MULTI_VIEW:
        two = OmegaConf.to_container(compose("pretrain", dataset, f"{method}.yaml"), resolve=True)
        four = OmegaConf.to_container(compose("pretrain", dataset, f"{method}_4views.yaml"), resolve=True)
        assert four["augmentations"][0].pop("num_crops") == 4 and two["augmentations"][0].pop("num_crops") == 2
        assert four.pop("name") == f"{method}-4views-{dataset}" and two.pop("name")
        # method infonce takes more than 2 crops only as MV-InfoNCE, asked for by name
        assert four["method_kwargs"].pop("multiview", False) is (method == "infonce")
        assert four == two
