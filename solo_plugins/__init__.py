"""solo-plugins: DHEL and KCL (Koromilas et al., ICML 2024) and their baselines for solo-learn.

``solo_plugins.losses`` and ``solo_plugins.metrics`` need torch alone. When solo-learn is
installed, importing this package registers the methods "infonce", "dcl", "dclw", "dhel", "kcl" and
the "small_cnn" backbone into solo-learn's registries.
"""

import importlib.util

from solo_plugins._version import __version__  # noqa: F401


def _solo_installed() -> bool:
    try:
        return importlib.util.find_spec("solo") is not None
    except (ImportError, ValueError):
        return False


SOLO_AVAILABLE = _solo_installed()

if SOLO_AVAILABLE:
    from solo_plugins.registration import register

    register()
