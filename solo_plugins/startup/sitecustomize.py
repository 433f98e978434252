"""Registers solo-plugins in every Python process of a run started by ``solo-plugins-run``.

``solo-plugins-run`` puts this folder first on PYTHONPATH and sets
``SOLO_PLUGINS_REGISTER=1``; both are inherited by every process the run starts, including
the ranks that Lightning's DDP launcher starts by re-running the script, so that
``method: dhel`` resolves in all of them. Another ``sitecustomize`` further down sys.path
still runs after this one.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))

if os.environ.get("SOLO_PLUGINS_REGISTER") == "1":
    import solo_plugins  # noqa: F401  (registers the methods and the backbone into solo-learn)
    from solo_plugins.dali import enable_dali_on_cpu

    enable_dali_on_cpu()


def _chain_to_the_next_sitecustomize() -> None:
    this = sys.modules.pop("sitecustomize", None)
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    try:
        import sitecustomize  # noqa: F401
    except ImportError:
        pass
    finally:
        sys.path[:] = saved
        sys.modules["sitecustomize"] = this  # the import that loaded this module returns it


_chain_to_the_next_sitecustomize()
