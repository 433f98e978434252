"""Adds the plugin's methods and backbone to solo-learn's registries.

solo-learn's scripts look methods up in ``solo.methods.METHODS`` and backbones in
``BaseMethod._BACKBONES`` at run time, so entries added before their ``main()`` runs are
enough; no fork needed. :mod:`solo_plugins.autoregister` calls :func:`register` when
``solo.methods`` is imported.
"""

import warnings
from typing import Dict


def _same(a, b) -> bool:
    # A reloaded module makes a new class object with the same qualified name.
    return a is b or (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def _add(registry: Dict, entries: Dict, what: str, on_clash: str) -> None:
    clashes = {name: registry[name] for name, value in entries.items()
               if registry.get(name) is not None and not _same(registry[name], value)}
    if clashes:
        described = ", ".join(f"{name!r} ({c.__module__}.{c.__qualname__})" for name, c in clashes.items())
        message = (f"solo-learn already has a {what} named {described}; solo-plugins will not replace "
                   f"{'it' if len(clashes) == 1 else 'them'} with its own")
        if on_clash == "raise":
            raise RuntimeError(message)
        warnings.warn(message + " (kept solo-learn's)", RuntimeWarning, stacklevel=3)
    registry.update({name: value for name, value in entries.items() if name not in clashes})


def register(on_clash: str = "raise") -> None:
    """Registers "infonce", "dcl", "dclw", "dhel", "kcl" and the "small_cnn" backbone. Idempotent.

    A name solo-learn already has for another class raises RuntimeError with
    ``on_clash="raise"``; with ``on_clash="skip"`` it gives one warning and keeps solo-learn's
    entry (the others are registered)."""
    if on_clash not in ("raise", "skip"):
        raise ValueError(f"on_clash must be 'raise' or 'skip'; got {on_clash!r}")
    from solo_plugins.console import quiet_imports

    with quiet_imports():
        from solo.methods import METHODS as SOLO_METHODS
        from solo.methods.base import BaseMethod

    from solo_plugins.backbones import BACKBONES
    from solo_plugins.methods import METHODS

    _add(SOLO_METHODS, METHODS, "method", on_clash)
    _add(BaseMethod._BACKBONES, BACKBONES, "backbone", on_clash)
