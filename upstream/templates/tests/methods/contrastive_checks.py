import pytest
import torch

from .utils import gen_base_cfg, gen_batch, gen_trainer, prepare_dummy_dataloaders


def check_contrastive_method(method_class, method_name, loss_kwargs, multicrop=True):
    """What tests/methods/test_simclr.py checks, for a method on contrastive_base: the
    config checks, the forward outputs, training on ImageNet-100 and CIFAR-10 shapes and,
    for a method with a multi-view loss, with 6 small crops (else a clear refusal)."""
    method_kwargs = {"proj_output_dim": 128, "proj_hidden_dim": 256, **loss_kwargs}

    cfg = gen_base_cfg(method_name, batch_size=2, num_classes=100)
    cfg.method_kwargs = method_kwargs
    cfg = method_class.add_and_assert_specific_cfg(cfg)
    model = method_class(cfg)
    assert model.learnable_params is not None

    batch, _ = gen_batch(cfg.optimizer.batch_size, cfg.data.num_classes, "imagenet100")
    out = model(batch[1][0])
    assert out["logits"].size() == (cfg.optimizer.batch_size, cfg.data.num_classes)
    assert out["feats"].size() == (cfg.optimizer.batch_size, model.features_dim)
    assert out["z"].size() == (cfg.optimizer.batch_size, method_kwargs["proj_output_dim"])
    multicrop_out = model.multicrop_forward(batch[1][0])
    assert multicrop_out["z"].size() == (cfg.optimizer.batch_size, method_kwargs["proj_output_dim"])

    for dataset, num_classes in (("imagenet100", 100), ("cifar10", 10)):
        cfg.data.dataset = dataset
        cfg.data.num_classes = num_classes
        model = method_class(cfg)
        trainer = gen_trainer(cfg)
        train_dl, val_dl = prepare_dummy_dataloaders(
            dataset,
            num_large_crops=cfg.data.num_large_crops,
            num_small_crops=0,
            num_classes=cfg.data.num_classes,
            batch_size=cfg.optimizer.batch_size,
        )
        trainer.fit(model, train_dl, val_dl)
        assert torch.isfinite(trainer.callback_metrics[f"train_{model.loss_name}_loss"])

    cfg.data.num_small_crops = 6
    if not multicrop:
        with pytest.raises(ValueError, match="compares exactly 2 views"):
            method_class.add_and_assert_specific_cfg(cfg)
        return
    model = method_class(method_class.add_and_assert_specific_cfg(cfg))
    trainer = gen_trainer(cfg)
    train_dl, val_dl = prepare_dummy_dataloaders(
        "cifar10",
        num_large_crops=cfg.data.num_large_crops,
        num_small_crops=cfg.data.num_small_crops,
        num_classes=cfg.data.num_classes,
        batch_size=cfg.optimizer.batch_size,
    )
    trainer.fit(model, train_dl, val_dl)
    assert torch.isfinite(trainer.callback_metrics[f"train_{model.loss_name}_loss"])


def check_paper_projector(method_class, method_name, loss_kwargs):
    """projector: paper ends in a BatchNorm whose bias is frozen at zero."""
    cfg = gen_base_cfg(method_name, batch_size=2, num_classes=10)
    cfg.method_kwargs = {"proj_output_dim": 16, "proj_hidden_dim": 32, "projector": "paper", **loss_kwargs}
    model = method_class(method_class.add_and_assert_specific_cfg(cfg))
    last = model.projector[-1]
    assert isinstance(last, torch.nn.BatchNorm1d) and not last.bias.requires_grad
    assert torch.all(last.bias == 0)


def check_bad_setting_is_named(method_class, method_name, loss_kwargs, key, value):
    cfg = gen_base_cfg(method_name, batch_size=2, num_classes=10)
    cfg.method_kwargs = {"proj_output_dim": 16, "proj_hidden_dim": 32, **loss_kwargs, key: value}
    with pytest.raises(ValueError, match=f"method_kwargs.{key}"):
        method_class.add_and_assert_specific_cfg(cfg)
