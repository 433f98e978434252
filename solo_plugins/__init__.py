"""solo-plugins: DHEL and KCL (Koromilas et al., ICML 2024) and their baselines for solo-learn.

``solo_plugins.losses`` and ``solo_plugins.metrics`` need torch alone. When solo-learn is
installed, importing this package registers the methods "dhel", "kcl", "dcl", "dclw" and
the "small_cnn" backbone into solo-learn's registries.
"""

import importlib.util

__version__ = "0.1.0"


def _solo_installed() -> bool:
    try:
        return importlib.util.find_spec("solo") is not None
    except (ImportError, ValueError):
        return False


SOLO_AVAILABLE = _solo_installed()

if SOLO_AVAILABLE:
    from solo_plugins.registration import register

    register()
