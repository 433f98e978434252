"""solo-plugins: DHEL and KCL (Koromilas et al., ICML 2024) and their baselines for solo-learn.

``solo_plugins.losses`` and ``solo_plugins.metrics`` need torch alone. Importing this package
imports neither torch nor solo-learn: it installs a hook that registers the methods "infonce",
"dcl", "dclw", "dhel", "kcl" and the "small_cnn" backbone into solo-learn's registries when
``solo.methods`` is imported (at once if it already is; :mod:`solo_plugins.autoregister`).
"""

from solo_plugins import autoregister as _autoregister
from solo_plugins._version import __version__  # noqa: F401

_autoregister.install()


def __getattr__(name):
    if name == "SOLO_AVAILABLE":  # whether solo-learn can be imported; looked up when asked
        import importlib.util

        try:
            return importlib.util.find_spec("solo") is not None
        except (ImportError, ValueError):
            return False
    raise AttributeError(f"module 'solo_plugins' has no attribute {name!r}")
