"""A small convolutional backbone for CPU-scale runs (digits, Fashion-MNIST)."""

import torch
import torch.nn as nn


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU stages (the last two strided) and global average pooling.

    Any input size of at least 8x8 pixels; ``num_features`` outputs, as solo-learn's
    non-ResNet backbones expose.
    """

    def __init__(self, width: int = 32, in_channels: int = 3):
        super().__init__()
        widths = (width, 2 * width, 4 * width)
        layers, channels = [], in_channels
        for i, out_channels in enumerate(widths):
            layers += [
                nn.Conv2d(channels, out_channels, 3, stride=1 if i == 0 else 2, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
            channels = out_channels
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)


def small_cnn(method: str = None, width: int = 32, **kwargs) -> SmallCNN:
    """solo-learn backbone factory signature: ``(method, **backbone.kwargs)``."""
    return SmallCNN(width=width, **kwargs)
