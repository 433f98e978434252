"""Offline k-NN evaluation of a pretraining run, on any device.

    solo-plugins-knn --config-path configs/knn --config-name digits.yaml \
        pretrained_checkpoint_dir=trained_models/dhel/<run>

The settings of solo-learn's main_knn.py, as a Hydra config: ``pretrained_checkpoint_dir``,
``data.{dataset,train_path,val_path,format}``, ``batch_size``, ``num_workers``, and lists
``k``, ``temperature``, ``distance_function`` (euclidean, cosine), ``feature_type``
(backbone, projector).
"""

from typing import Dict, Tuple

import torch
from omegaconf import DictConfig
from solo.data.classification_dataloader import prepare_dataloaders, prepare_datasets, prepare_transforms
from solo.utils.knn import WeightedKNNClassifier

from solo_plugins.checkpoints import load_method
from solo_plugins.commands._hydra import run_hydra
from solo_plugins.device import config_device
from solo_plugins.data.transforms import custom_image_size


@torch.no_grad()
def extract(loader, model, device) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
    feats, projs, labels = [], [], []
    for images, targets in loader:
        out = model(images.to(device))
        feats.append(out["feats"])
        projs.append(out["z"])
        labels.append(targets.to(device))
    return {"backbone": torch.cat(feats), "projector": torch.cat(projs)}, torch.cat(labels)


def knn_eval(cfg: DictConfig):
    device = config_device(cfg)
    model, _ = load_method(cfg.pretrained_checkpoint_dir)
    model.to(device)
    with custom_image_size(cfg.data.get("image_size")):
        _, transform = prepare_transforms(cfg.data.dataset)
    train_set, val_set = prepare_datasets(
        cfg.data.dataset,
        T_train=transform,
        T_val=transform,
        train_data_path=cfg.data.train_path,
        val_data_path=cfg.data.val_path,
        data_format=cfg.data.get("format", "image_folder"),
    )
    train_loader, val_loader = prepare_dataloaders(
        train_set, val_set, batch_size=cfg.batch_size, num_workers=cfg.num_workers
    )
    train_feats, train_y = extract(train_loader, model, device)
    test_feats, test_y = extract(val_loader, model, device)
    results = []
    for feature_type in cfg.feature_type:
        for k in cfg.k:
            for distance in cfg.distance_function:
                for T in cfg.temperature if distance == "cosine" else [None]:
                    knn = WeightedKNNClassifier(k=k, T=T if T is not None else 0.07, distance_fx=distance)
                    knn(
                        train_features=train_feats[feature_type],
                        train_targets=train_y,
                        test_features=test_feats[feature_type],
                        test_targets=test_y,
                    )
                    acc1, acc5 = knn.compute()
                    results.append(dict(feature_type=feature_type, k=k, distance=distance, T=T, acc1=acc1, acc5=acc5))
                    print(f"{feature_type} k={k} {distance} T={T}: acc@1={acc1:.2f} acc@5={acc5:.2f}")
    return results


def main() -> None:
    run_hydra(knn_eval, configs="knn")


if __name__ == "__main__":
    main()
