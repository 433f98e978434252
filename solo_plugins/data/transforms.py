"""Evaluation transforms for small custom images.

solo-learn's classification pipeline for ``dataset: custom`` is ImageNet's (resize to
256, crop 224), and its documented way to change it is to rewrite
``solo.data.classification_dataloader.build_custom_pipeline``. With ``data.image_size``
set in the config, the commands swap in this pipeline at that size, so 8x8 digits or
28x28 Fashion-MNIST are not blown up to 224x224 for validation and linear evaluation.
"""

import contextlib
from typing import Optional

from torchvision import transforms

MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


def small_image_pipeline(size: int, augment: bool = True):
    """Random crops of half the image or more for training (``augment``), the whole image
    for validation; without ``augment`` training sees the validation transform."""
    whole = transforms.Compose(
        [transforms.Resize((size, size)), transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    )
    cropped = transforms.Compose(
        [
            transforms.RandomResizedCrop(size=size, scale=(0.5, 1.0)),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )
    return {"T_train": cropped if augment else whole, "T_val": whole}


@contextlib.contextmanager
def custom_image_size(size: Optional[int], augment: bool = True):
    """Within the block, solo-learn's custom-dataset classification transforms use ``size``
    (and, with ``augment=False``, no random crops for training either)."""
    if size is None:
        yield
        return
    from solo.data import classification_dataloader as module

    original = module.build_custom_pipeline
    module.build_custom_pipeline = lambda: small_image_pipeline(int(size), augment)
    try:
        yield
    finally:
        module.build_custom_pipeline = original


class TwoViews:
    """An image seen twice under ``transform``: the pairs the alignment metric compares."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image):
        return [self.transform(image), self.transform(image)]
