"""``method: dhel`` in every process, without importing solo-learn before it is needed.

:func:`install` puts a finder at the front of ``sys.meta_path`` that waits for
``solo.methods``: it lets the other finders find the module, and once the module has executed
it registers the plugin's methods and backbone (:func:`solo_plugins.registration.register`).
If ``solo.methods`` is already imported, it registers at once. ``import solo_plugins`` installs
it; so does the ``solo_plugins.pth`` file that a (non-editable) install puts in site-packages,
so that solo-learn's own unmodified ``main_pretrain.py`` finds the methods in every rank
Lightning starts. That line runs in every Python of the environment: this module imports
nothing but the standard library until ``solo.methods`` is imported.

It registers once and never raises: a name solo-learn already has (its own ``dhel``, from the
upstream series) or a registration that fails gives one warning and is skipped.
"""

import importlib.abc
import sys
import threading
import warnings

TARGET = "solo.methods"
_lock = threading.RLock()
_state = {"registered": False, "finding": False, "pending": False}


def _initializing(name: str) -> bool:
    module = sys.modules.get(name)
    return module is not None and bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def register_once() -> None:
    """Registers the plugin into solo-learn's registries, once per process; warns, never raises.

    When ``solo.methods`` is first imported by ``solo_plugins.methods`` itself (its modules
    import solo-learn), the plugin's registry does not exist yet: the registration then waits
    until ``solo_plugins.methods`` has executed (the finder watches it too)."""
    with _lock:
        if _state["registered"]:
            return
        if _initializing("solo_plugins.methods"):
            _state["pending"] = True
            return
        _register()


def register_pending() -> None:
    """A registration that waited for ``solo_plugins.methods``, now that it has executed."""
    with _lock:
        if _state["pending"] and not _state["registered"] and TARGET in sys.modules:
            _register()


def _register() -> None:
    _state["registered"], _state["pending"] = True, False
    try:
        from solo_plugins.registration import register

        register(on_clash="skip")
    except Exception as error:  # noqa: BLE001  (an import hook must not break the user's import)
        warnings.warn(f"solo-plugins could not register its methods into solo-learn "
                      f"({type(error).__name__}: {error}); 'method: dhel' and the others will not be found",
                      RuntimeWarning, stacklevel=3)


#: the modules the finder watches, and what follows their execution
WATCHED = {TARGET: register_once, "solo_plugins.methods": register_pending}


class _RegisterAfterExec(importlib.abc.Loader):
    """A watched module's real loader, followed by its registration step."""

    def __init__(self, loader, then):
        self.loader, self.then = loader, then

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.then()

    def __getattr__(self, name):  # is_package, get_code, get_source, resource readers ...
        return getattr(self.loader, name)


class SoloMethodsFinder(importlib.abc.MetaPathFinder):
    """Hands ``solo.methods`` (and ``solo_plugins.methods``) to the next finders and wraps the
    loader they return."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in WATCHED or _state["registered"] or _state["finding"]:
            return None
        with _lock:
            _state["finding"] = True
            try:
                spec = None
                for finder in sys.meta_path:
                    find = getattr(finder, "find_spec", None)
                    if finder is self or isinstance(finder, SoloMethodsFinder) or find is None:
                        continue
                    spec = find(fullname, path, target)
                    if spec is not None:
                        break
            finally:
                _state["finding"] = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _RegisterAfterExec(spec.loader, WATCHED[fullname])
        return spec


def install() -> None:
    """Registers now if ``solo.methods`` has executed, otherwise once it does. Idempotent."""
    module = sys.modules.get(TARGET)
    if module is not None and hasattr(module, "METHODS"):
        register_once()
        return
    if not any(isinstance(f, SoloMethodsFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, SoloMethodsFinder())
