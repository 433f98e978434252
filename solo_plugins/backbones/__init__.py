from solo_plugins.backbones.small_cnn import small_cnn

BACKBONES = {"small_cnn": small_cnn}

__all__ = ["BACKBONES", "small_cnn"]
