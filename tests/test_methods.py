"""The plugin's methods as solo-learn methods: construction, forward, Trainer fits."""

import pytest
import torch
from lightning.pytorch import Trainer
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

solo_methods = pytest.importorskip("solo.methods")

import solo_plugins  # noqa: E402,F401
from solo_plugins.methods import DCL, DCLW, DHEL, KCL, InfoNCE  # noqa: E402

METHOD_KWARGS = {
    "infonce": {"temperature": 0.2},
    "dhel": {"temperature": 0.3, "include_augs": True},
    "kcl": {"kernel": "gaussian", "t": 2.0, "gamma": 16.0},
    "dcl": {"temperature": 0.1},
    "dclw": {"temperature": 0.1, "weight_sigma": 0.5},
}


def base_cfg(method, dataset="cifar10", backbone="resnet18", crop=32, batch_size=4, **method_kwargs):
    kwargs = {"proj_hidden_dim": 32, "proj_output_dim": 16, **METHOD_KWARGS[method], **method_kwargs}
    cfg = {
        "method": method,
        "backbone": {"name": backbone, "kwargs": {}},
        "method_kwargs": kwargs,
        "data": {"dataset": dataset, "num_classes": 10, "num_large_crops": 2, "num_small_crops": 0},
        "optimizer": {
            "name": "sgd",
            "batch_size": batch_size,
            "lr": 0.1,
            "weight_decay": 1e-5,
            "classifier_lr": 0.1,
            "exclude_bias_n_norm_wd": False,
            "kwargs": {"momentum": 0.9},
        },
        "scheduler": {"name": "warmup_cosine", "warmup_epochs": 0},
        "max_epochs": 1,
        "augmentations": [{"crop_size": crop, "num_crops": 2}],
    }
    return OmegaConf.create(cfg)


class FakeViews(Dataset):
    """solo-learn's pretraining batch format: (index, [view1, view2], label)."""

    def __init__(self, n=8, size=32):
        self.n, self.size = n, size

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        views = [torch.randn(3, self.size, self.size, generator=g) for _ in range(2)]
        return i, views, i % 10


CLASSES = {"infonce": InfoNCE, "dhel": DHEL, "kcl": KCL, "dcl": DCL, "dclw": DCLW}


@pytest.mark.parametrize("name", list(CLASSES))
def test_registered_under_paper_names(name):
    assert solo_methods.METHODS[name] is CLASSES[name]
    from solo.methods.base import BaseMethod

    assert BaseMethod._BACKBONES["small_cnn"] is solo_plugins.backbones.small_cnn


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CLASSES))
def test_construct_forward_shapes_and_learnable_params(name):
    model = CLASSES[name](base_cfg(name))
    x = torch.randn(4, 3, 32, 32)
    out = model(x)
    assert out["feats"].shape == (4, 512) and out["z"].shape == (4, 16) and out["logits"].shape == (4, 10)
    groups = {g["name"] for g in model.learnable_params}
    assert {"backbone", "classifier", "projector"} <= groups
    assert model.cfg.method_kwargs.projector == "mlp"


def test_mlp_bn_projector_option():
    model = DHEL(base_cfg("dhel", projector="mlp_bn"))
    assert [type(m).__name__ for m in model.projector] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]


@pytest.mark.slow
def test_paper_projector_is_the_simclr_pytorch_head_with_a_frozen_last_bias(tmp_path):
    """Linear(no bias)-BN-ReLU-Linear(no bias)-BN whose bias stays 0 through training."""
    model = InfoNCE(base_cfg("infonce", projector="paper"))
    head = model.projector
    assert [type(m).__name__ for m in head] == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1dNoBias"]
    assert head[0].bias is None and head[3].bias is None
    assert not head[4].bias.requires_grad and head[4].weight.requires_grad
    trainer = Trainer(max_steps=3, accelerator="cpu", logger=False, default_root_dir=tmp_path,
                      enable_checkpointing=False)
    before = head[4].weight.detach().clone()
    trainer.fit(model, DataLoader(FakeViews(8), batch_size=4))
    assert torch.equal(head[4].bias, torch.zeros_like(head[4].bias))
    assert not torch.equal(head[4].weight, before)
    # Independent formula in train mode: batch-standardize, scale, no shift.
    head.train()
    x = torch.randn(6, 512)
    h = torch.relu(torch.nn.functional.batch_norm(x @ head[0].weight.T, None, None, head[1].weight, head[1].bias,
                                                  training=True))
    y = h @ head[3].weight.T
    expected = (y - y.mean(0)) / torch.sqrt(y.var(0, unbiased=False) + head[4].eps) * head[4].weight
    torch.testing.assert_close(head(x), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bad", ["batchnorm", "", 3])
def test_unknown_projector_is_a_config_error(bad):
    from solo_plugins.methods.config import ConfigError

    with pytest.raises(ConfigError, match="method_kwargs.projector must be one of mlp, mlp_bn, paper"):
        DHEL(base_cfg("dhel", projector=bad))


def test_old_proj_batchnorm_key_names_its_replacement():
    from solo_plugins.methods.config import ConfigError

    with pytest.raises(ConfigError, match="replaced by method_kwargs.projector"):
        DHEL(base_cfg("dhel", proj_batchnorm=True))


@pytest.mark.slow
def test_infonce_method_is_solo_simclr_loss_on_the_same_projections(monkeypatch):
    """The registered infonce method's loss against solo-learn's own simclr_loss_func."""
    from solo.losses.simclr import simclr_loss_func

    model = InfoNCE(base_cfg("infonce", temperature=0.3))
    logged = {}
    monkeypatch.setattr(model, "log_dict", lambda d, **kw: logged.update(d))
    batch = next(iter(DataLoader(FakeViews(4), batch_size=4)))
    model.training_step(batch, 0)
    z1, z2 = (model(v)["z"] for v in batch[1])
    expected = simclr_loss_func(torch.cat([z1, z2]), indexes=torch.arange(4).repeat(2), temperature=0.3)
    torch.testing.assert_close(logged["train_infonce_loss"], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_training_step_uses_the_loss_library_and_logs_both_parts(monkeypatch):
    from solo_plugins.losses import kcl_loss_terms

    model = KCL(base_cfg("kcl", kernel="imq", t=1.0, gamma=3.0))
    logged = {}
    monkeypatch.setattr(model, "log_dict", lambda d, **kw: logged.update(d))
    batch = next(iter(DataLoader(FakeViews(4), batch_size=4)))
    loss = model.training_step(batch, 0)
    z1, z2 = (model(v)["z"] for v in batch[1])
    expected = kcl_loss_terms(z1, z2, kernel="imq", t=1.0, gamma=3.0)
    torch.testing.assert_close(logged["train_kcl_loss"], expected.loss, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logged["train_alignment_term"], expected.alignment, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logged["train_energy_term"], expected.uniformity, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(loss, expected.loss + logged["train_class_loss"], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CLASSES))
def test_fast_dev_run_fit_cifar_sized(name, tmp_path):
    model = CLASSES[name](base_cfg(name))
    trainer = Trainer(fast_dev_run=True, accelerator="cpu", logger=False, default_root_dir=tmp_path)
    before = [p.detach().clone() for p in model.projector.parameters()]
    trainer.fit(model, DataLoader(FakeViews(8), batch_size=4))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.projector.parameters()))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dhel", "kcl"])
def test_an_imagenet_config_trains_solo_s_imagenet_resnet_on_224_pixel_crops(name, tmp_path):
    """dataset: imagenet100 gives solo-learn's ImageNet ResNet (7x7 stride-2 stem and max-pool,
    not the CIFAR stem), and one step on 224-pixel crops gives a finite loss and moves the
    backbone's first layer."""
    model = CLASSES[name](base_cfg(name, dataset="imagenet100", crop=224, batch_size=2))
    assert model.backbone.conv1.kernel_size == (7, 7) and model.backbone.conv1.stride == (2, 2)
    assert not isinstance(model.backbone.maxpool, torch.nn.Identity)
    cifar = CLASSES[name](base_cfg(name))
    assert cifar.backbone.conv1.kernel_size == (3, 3) and isinstance(cifar.backbone.maxpool, torch.nn.Identity)
    before = model.backbone.conv1.weight.detach().clone()
    trainer = Trainer(fast_dev_run=True, accelerator="cpu", logger=False, default_root_dir=tmp_path)
    trainer.fit(model, DataLoader(FakeViews(2, size=224), batch_size=2))
    assert torch.isfinite(trainer.callback_metrics[f"train_{model.loss_name}_loss"])
    assert not torch.equal(before, model.backbone.conv1.weight)


def test_registration_is_idempotent_and_refuses_to_replace_another_class():
    from solo_plugins.registration import register

    register()
    register()
    assert solo_methods.METHODS["dhel"] is DHEL
    original = solo_methods.METHODS["kcl"]

    class KCL(torch.nn.Module):  # same name, different class
        pass

    solo_methods.METHODS["kcl"] = KCL
    try:
        with pytest.raises(RuntimeError, match="already has a method named 'kcl'"):
            register()
    finally:
        solo_methods.METHODS["kcl"] = original


@pytest.mark.slow
def test_steps_log_without_collectives_and_the_epoch_mean_is_synced_once(tmp_path):
    """Per-step values are logged without sync_dist (no all-reduce per step under DDP); the
    epoch means of the same values are logged once per epoch, with sync_dist."""
    model = DHEL(base_cfg("dhel"))
    calls = []
    original = model.log_dict

    def recording(values, **kwargs):
        calls.append(({k: float(v) for k, v in values.items()}, kwargs))
        return original(values, **kwargs)

    model.log_dict = recording
    trainer = Trainer(max_epochs=2, accelerator="cpu", logger=False, default_root_dir=tmp_path,
                      enable_checkpointing=False, num_sanity_val_steps=0)
    trainer.fit(model, DataLoader(FakeViews(12), batch_size=4))
    ours = [(v, kw) for v, kw in calls if any(k.startswith("train_dhel_loss") for k in v)]
    steps = [v for v, kw in ours if "train_dhel_loss" in v]
    epochs = [(v, kw) for v, kw in ours if "train_dhel_loss_epoch" in v]
    assert len(steps) == 6 and len(epochs) == 2
    assert all(not kw.get("sync_dist", False) and kw.get("on_step") and not kw.get("on_epoch")
               for v, kw in ours if "train_dhel_loss" in v)
    assert all(kw.get("sync_dist") for _, kw in epochs)
    for epoch, (values, _) in enumerate(epochs):
        for name in ("train_dhel_loss", "train_alignment_term", "train_uniformity_term"):
            mean = sum(s[name] for s in steps[3 * epoch: 3 * epoch + 3]) / 3
            assert values[f"{name}_epoch"] == pytest.approx(mean, rel=1e-6)
    assert trainer.callback_metrics["train_dhel_loss_epoch"] == pytest.approx(epochs[-1][0]["train_dhel_loss_epoch"])


def test_kcl_s_config_names_the_parameter_its_kernel_takes():
    """A YAML's t (the shipped ones set t: 2.0) does not clash with s for a Riesz kernel; a
    Riesz kernel given t alone takes it as s with a FutureWarning, and s > 0 is refused."""
    from solo_plugins.methods.config import ConfigError

    model = KCL(base_cfg("kcl", kernel="riesz", s=-1.0))
    assert (model.t, model.s) == (None, -1.0)
    z1, z2 = torch.randn(6, 16), torch.randn(6, 16)
    from solo_plugins.losses import kcl_loss_terms

    torch.testing.assert_close(model.contrastive_terms(z1, z2).loss,
                               kcl_loss_terms(z1, z2, kernel="riesz", s=-1.0, gamma=16.0).loss)
    with pytest.raises(ConfigError, match="no lower bound"):
        KCL(base_cfg("kcl", kernel="riesz", s=1.0))
    with pytest.warns(FutureWarning, match="renamed s"), pytest.raises(ConfigError, match="no lower bound"):
        KCL(base_cfg("kcl", kernel="riesz"))  # the defaults' t = 2.0, taken as s
    with pytest.raises(ConfigError, match="takes t"):
        KCL(base_cfg("kcl", kernel="gaussian", s=1.0))
