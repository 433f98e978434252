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

import torch
from solo.data.dali_dataloader import ClassificationDALIDataModule
from solo.methods.linear import LinearModel
from torch import nn
from torchvision.models.resnet import resnet18

from ..methods.utils import gen_base_cfg, gen_trainer
from .utils import DummyDataset


def test_dali_cpu_pipelines_do_not_need_cuda(monkeypatch):
    """With dali.device: cpu the pipelines are built with device_id=None, so DALI does not
    look for a GPU (before, device_id=<local rank> made DALI assert that CUDA is there)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    # 5 classes at least: the linear model reports top-5 accuracy
    with DummyDataset("./dummy_cpu_train", "./dummy_cpu_val", 2, 5):
        cfg = gen_base_cfg("none", batch_size=2, num_classes=5)
        cfg = ClassificationDALIDataModule.add_and_assert_specific_cfg(cfg)
        cfg.dali.device = "cpu"
        cfg.data.train_path = "./dummy_cpu_train"
        cfg.data.val_path = "./dummy_cpu_val"
        cfg.data.dataset = "custom"
        cfg.data.num_workers = 1

        backbone = resnet18()
        backbone.fc = nn.Identity()
        model = LinearModel(backbone, loss_func=nn.CrossEntropyLoss(), cfg=cfg)
        datamodule = ClassificationDALIDataModule(
            dataset=cfg.data.dataset,
            train_data_path=cfg.data.train_path,
            val_data_path=cfg.data.val_path,
            num_workers=cfg.data.num_workers,
            batch_size=cfg.optimizer.batch_size,
            data_fraction=-1,
            dali_device=cfg.dali.device,
        )
        trainer = gen_trainer(cfg)
        trainer.fit(model, datamodule=datamodule)
        assert trainer.global_step == 1
