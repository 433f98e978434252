"""solo-learn methods (LightningModules on solo's BaseMethod). Needs solo-learn."""

from solo_plugins import autoregister as _autoregister
from solo_plugins.methods.dcl import DCL
from solo_plugins.methods.dclw import DCLW
from solo_plugins.methods.dhel import DHEL
from solo_plugins.methods.infonce import InfoNCE
from solo_plugins.methods.kcl import KCL

METHODS = {"infonce": InfoNCE, "dcl": DCL, "dclw": DCLW, "dhel": DHEL, "kcl": KCL}

# solo.methods may have been imported by the modules above: its registration waited for METHODS
_autoregister.register_pending()

__all__ = ["DCL", "DCLW", "DHEL", "InfoNCE", "KCL", "METHODS"]
