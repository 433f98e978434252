"""Methods with more than two crops, built and trained with solo-learn's own test helpers
(tests/methods/utils.py: gen_base_cfg, prepare_dummy_dataloaders, gen_trainer), as solo's
tests/methods/test_simclr.py does for SimCLR."""

import importlib.util
import os

import pytest
import torch

solo = pytest.importorskip("solo")

import solo_plugins  # noqa: E402,F401
from solo_plugins.methods import DCL, DCLW, DHEL, KCL, InfoNCE  # noqa: E402
from solo_plugins.methods.config import ConfigError  # noqa: E402


def _solo_test_helpers():
    """solo-learn's tests/methods/utils.py: installed next to the solo package by its
    setup.py, or in the checkout SOLO_LEARN_CHECKOUT names."""
    candidates = [os.path.join(os.path.dirname(os.path.dirname(solo.__file__)), "tests", "methods", "utils.py")]
    if os.environ.get("SOLO_LEARN_CHECKOUT"):
        candidates.insert(0, os.path.join(os.environ["SOLO_LEARN_CHECKOUT"], "tests", "methods", "utils.py"))
    for path in candidates:
        if os.path.exists(path):
            spec = importlib.util.spec_from_file_location("solo_test_helpers", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    pytest.skip("solo-learn's tests/methods/utils.py not found: set SOLO_LEARN_CHECKOUT to a checkout")


METHODS = {
    "infonce": (InfoNCE, {"temperature": 0.2}, "multiview_terms"),
    "dhel": (DHEL, {"temperature": 0.3, "include_augs": True}, "multiview_terms"),
    "kcl": (KCL, {"kernel": "gaussian", "t": 2.0, "gamma": 16.0}, "multiview_terms"),
}


def _cfg(helpers, name, kwargs, large, small):
    cfg = helpers.gen_base_cfg(name, batch_size=2, num_classes=10, num_large_crops=large, num_small_crops=small)
    cfg.method_kwargs = {"proj_hidden_dim": 64, "proj_output_dim": 32, **kwargs}
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize("crops", [(2, 0), (4, 0), (2, 6)], ids=["2+0", "4+0", "2+6"])
@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_crop_is_a_view(name, crops, monkeypatch):
    helpers = _solo_test_helpers()
    method_class, kwargs, _ = METHODS[name]
    large, small = crops
    if name == "infonce" and large + small != 2:
        kwargs = {**kwargs, "multiview": True}  # MV-InfoNCE, asked for by name
    cfg = method_class.add_and_assert_specific_cfg(_cfg(helpers, name, kwargs, large, small))
    model = method_class(cfg)
    seen = []
    two_view, multi_view = model.contrastive_terms, model.multiview_terms
    monkeypatch.setattr(model, "contrastive_terms", lambda z1, z2: seen.append(2) or two_view(z1, z2))
    monkeypatch.setattr(model, "multiview_terms", lambda views: seen.append(len(views)) or multi_view(views))

    train_dl, val_dl = helpers.prepare_dummy_dataloaders(
        "cifar10", num_large_crops=large, num_small_crops=small, num_classes=10, batch_size=2
    )
    trainer = helpers.gen_trainer(cfg)
    trainer.fit(model, train_dl, val_dl)
    assert seen == [large + small]  # 2+0 takes the two-view loss, as before
    assert torch.isfinite(trainer.callback_metrics[f"train_{name}_loss"])


@pytest.mark.parametrize("method_class,name,kwargs", [
    (DCL, "dcl", {"temperature": 0.1}),
    (DCLW, "dclw", {"temperature": 0.1, "weight_sigma": 0.5}),
    (DHEL, "dhel", {"temperature": 0.3, "include_augs": False}),
])
def test_two_view_only_settings_refuse_more_crops_naming_why(method_class, name, kwargs):
    helpers = _solo_test_helpers()
    with pytest.raises(ConfigError, match=r"compares exactly 2 views .*num_large_crops=4"):
        method_class.add_and_assert_specific_cfg(_cfg(helpers, name, kwargs, 4, 0))
    method_class.add_and_assert_specific_cfg(_cfg(helpers, name, kwargs, 2, 0))


def test_infonce_with_more_crops_asks_for_the_multiview_setting_and_then_takes_mv_infonce():
    """0.3 switched method infonce to MV-InfoNCE, a different objective, without a word."""
    helpers = _solo_test_helpers()
    with pytest.raises(ConfigError, match=r"exactly 2 crops; this config has 4 .*method_kwargs.multiview: true"):
        InfoNCE.add_and_assert_specific_cfg(_cfg(helpers, "infonce", {"temperature": 0.2}, 4, 0))
    cfg = InfoNCE.add_and_assert_specific_cfg(_cfg(helpers, "infonce", {"temperature": 0.2, "multiview": True}, 2, 0))
    model, z1, z2 = InfoNCE(cfg), torch.randn(6, 8), torch.randn(6, 8)
    from solo_plugins.losses import mv_infonce_loss_func

    torch.testing.assert_close(model.contrastive_terms(z1, z2).loss, mv_infonce_loss_func([z1, z2], temperature=0.2))


def test_one_large_crop_is_refused():
    helpers = _solo_test_helpers()
    with pytest.raises(ConfigError, match="num_large_crops >= 2"):
        DHEL.add_and_assert_specific_cfg(_cfg(helpers, "dhel", METHODS["dhel"][1], 1, 2))
