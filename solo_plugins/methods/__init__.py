"""solo-learn methods (LightningModules on solo's BaseMethod). Needs solo-learn."""

from solo_plugins.methods.dcl import DCL
from solo_plugins.methods.dclw import DCLW
from solo_plugins.methods.dhel import DHEL
from solo_plugins.methods.infonce import InfoNCE
from solo_plugins.methods.kcl import KCL

METHODS = {"infonce": InfoNCE, "dcl": DCL, "dclw": DCLW, "dhel": DHEL, "kcl": KCL}

__all__ = ["DCL", "DCLW", "DHEL", "InfoNCE", "KCL", "METHODS"]
