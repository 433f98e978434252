"""Adds the plugin's methods and backbone to solo-learn's registries.

solo-learn's scripts look methods up in ``solo.methods.METHODS`` and backbones in
``BaseMethod._BACKBONES`` at run time, so entries added before their ``main()`` runs are
enough; no fork needed.
"""

from typing import Dict


def _same(a, b) -> bool:
    # A reloaded module makes a new class object with the same qualified name.
    return a is b or (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def _add(registry: Dict, entries: Dict, what: str) -> None:
    for name, value in entries.items():
        present = registry.get(name)
        if present is not None and not _same(present, value):
            raise RuntimeError(
                f"solo-learn already has a {what} named {name!r} ({present.__module__}."
                f"{present.__qualname__}); solo-plugins will not replace it with "
                f"{value.__module__}.{value.__qualname__}"
            )
    registry.update(entries)


def register() -> None:
    """Registers "infonce", "dcl", "dclw", "dhel", "kcl" and the "small_cnn" backbone. Idempotent."""
    from solo_plugins.console import quiet_imports

    with quiet_imports():
        from solo.methods import METHODS as SOLO_METHODS
        from solo.methods.base import BaseMethod

    from solo_plugins.backbones import BACKBONES
    from solo_plugins.methods import METHODS

    _add(SOLO_METHODS, METHODS, "method")
    _add(BaseMethod._BACKBONES, BACKBONES, "backbone")
