import math
import subprocess
import sys

BLOCK_SOLO = """
import importlib.abc, sys
class NoSolo(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "solo" or name.startswith("solo."):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, NoSolo())
"""


def test_losses_and_metrics_import_and_run_without_solo_learn():
    code = BLOCK_SOLO + """
import torch
import solo_plugins
from solo_plugins.losses import dhel_loss_func, kcl_loss_func
from solo_plugins.metrics import wasserstein_uniformity
assert not solo_plugins.SOLO_AVAILABLE
assert not any(m == "solo" or m.startswith("solo.") for m in sys.modules)
assert not any(m.startswith("lightning") for m in sys.modules)
z = torch.randn(8, 4)
print(float(dhel_loss_func(z, z.flip(0))) + float(kcl_loss_func(z, z)) + float(wasserstein_uniformity(z)))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert math.isfinite(float(result.stdout.strip().splitlines()[-1]))


def test_import_registers_into_solo_learn_when_present():
    code = "import solo.methods, solo_plugins; assert {'dhel','kcl','dcl','dclw'} <= set(solo.methods.METHODS)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
