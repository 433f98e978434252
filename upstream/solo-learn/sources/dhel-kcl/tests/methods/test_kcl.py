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

import omegaconf
import pytest
import torch
from solo.methods import KCL

from .utils import gen_base_cfg, gen_batch, gen_trainer, prepare_dummy_dataloaders


def test_kcl():
    method_kwargs = {"proj_output_dim": 256, "proj_hidden_dim": 2048}

    cfg = gen_base_cfg("kcl", batch_size=2, num_classes=100)
    cfg.method_kwargs = method_kwargs
    # test arguments: the defaults are filled in
    cfg = KCL.add_and_assert_specific_cfg(cfg)
    assert (cfg.method_kwargs.kernel, cfg.method_kwargs.t, cfg.method_kwargs.gamma) == (
        "gaussian",
        2.0,
        16.0,
    )
    model = KCL(cfg)

    # test parameters
    assert model.learnable_params is not None

    # test forward
    batch, _ = gen_batch(cfg.optimizer.batch_size, cfg.data.num_classes, "imagenet100")
    out = model(batch[1][0])
    assert (
        "logits" in out
        and isinstance(out["logits"], torch.Tensor)
        and out["logits"].size() == (cfg.optimizer.batch_size, cfg.data.num_classes)
    )
    assert (
        "feats" in out
        and isinstance(out["feats"], torch.Tensor)
        and out["feats"].size() == (cfg.optimizer.batch_size, model.features_dim)
    )
    assert (
        "z" in out
        and isinstance(out["z"], torch.Tensor)
        and out["z"].size() == (cfg.optimizer.batch_size, method_kwargs["proj_output_dim"])
    )

    # imagenet
    model = KCL(cfg)

    trainer = gen_trainer(cfg)
    train_dl, val_dl = prepare_dummy_dataloaders(
        "imagenet100",
        num_large_crops=cfg.data.num_large_crops,
        num_small_crops=0,
        num_classes=cfg.data.num_classes,
        batch_size=cfg.optimizer.batch_size,
    )
    trainer.fit(model, train_dl, val_dl)

    # cifar
    cfg.data.dataset = "cifar10"
    cfg.data.num_classes = 10
    model = KCL(cfg)

    trainer = gen_trainer(cfg)
    train_dl, val_dl = prepare_dummy_dataloaders(
        "cifar10",
        num_large_crops=cfg.data.num_large_crops,
        num_small_crops=0,
        num_classes=cfg.data.num_classes,
        batch_size=cfg.optimizer.batch_size,
    )
    trainer.fit(model, train_dl, val_dl)


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("method_kwargs.kernel", "laplace", "kernel must be one of gaussian, log, imq, riesz"),
        ("method_kwargs.t", 0.0, "t must be > 0"),
        ("method_kwargs.kernel", "riesz", "Riesz exponent\\) must be < 0"),
        ("method_kwargs.gamma", -1.0, "gamma must be >= 0"),
    ],
)
def test_kcl_rejects_a_bad_setting(key, value, message):
    cfg = gen_base_cfg("kcl", batch_size=2, num_classes=10)
    cfg.method_kwargs = {"proj_output_dim": 256, "proj_hidden_dim": 2048}
    omegaconf.OmegaConf.update(cfg, key, value)
    with pytest.raises(AssertionError, match=message):
        KCL.add_and_assert_specific_cfg(cfg)


def test_kcl_rejects_a_global_batch_of_one():
    cfg = gen_base_cfg("kcl", batch_size=1, num_classes=10)
    cfg.method_kwargs = {"proj_output_dim": 256, "proj_hidden_dim": 2048}
    model = KCL(KCL.add_and_assert_specific_cfg(cfg))
    batch, _ = gen_batch(1, cfg.data.num_classes, "imagenet100")
    with pytest.raises(ValueError, match="global batch of at least 2"):
        model.training_step(batch, 0)
