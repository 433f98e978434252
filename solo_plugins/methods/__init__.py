"""solo-learn methods (LightningModules on solo's BaseMethod). Needs solo-learn."""

from solo_plugins.methods.dcl import DCL
from solo_plugins.methods.dclw import DCLW
from solo_plugins.methods.dhel import DHEL
from solo_plugins.methods.kcl import KCL

METHODS = {"dhel": DHEL, "kcl": KCL, "dcl": DCL, "dclw": DCLW}

__all__ = ["DCL", "DCLW", "DHEL", "KCL", "METHODS"]
