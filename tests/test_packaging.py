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


def fresh_venv_seeing_this_interpreter(venv) -> "os.PathLike":
    """A new virtual environment that sees the packages of the interpreter running the tests.

    ``venv --system-site-packages`` would show it the *base* interpreter's packages: run from
    inside a virtualenv (where users install torch and solo-learn) it would see neither. So
    the new environment gets a .pth file that adds every site directory of this interpreter
    (processing their own .pth files, as a system site directory would be), after its own."""
    import os

    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = os.path.join(venv, "bin", "python")
    own = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True, timeout=300).stdout.strip()
    ours = [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages") and os.path.isdir(p)]
    with open(os.path.join(own, "_outer_interpreter.pth"), "w") as f:
        f.write("".join(f"import site; site.addsitedir({p!r})\n" for p in ours))
    return os.path.join(venv, "bin")


def test_a_fresh_venv_sees_this_interpreter_s_packages_not_only_the_base_ones(tmp_path):
    import os

    bin_dir = fresh_venv_seeing_this_interpreter(tmp_path / "venv")
    code = "import sys, torch, pytest; print(sys.prefix); print(torch.__file__)"
    out = subprocess.run([os.path.join(bin_dir, "python"), "-c", code], capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    import torch

    assert out[0] == str(tmp_path / "venv") and out[1] == torch.__file__


def test_wheel_ships_the_configs_and_runs_from_an_empty_directory(tmp_path):
    """Build the wheel, install it into a fresh virtual environment next to solo-learn (the
    environment's site-packages), then run a shipped config by name and the demo's first
    run from an empty directory: everything lands under the folders given."""
    import glob
    import os
    import zipfile

    pytest = __import__("pytest")
    pytest.importorskip("solo.methods")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), repo], check=True, capture_output=True, timeout=600)
    (wheel,) = glob.glob(str(wheels / "solo_plugins-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "solo_plugins/configs/pretrain/cifar10/dhel.yaml" in names
    assert "solo_plugins/configs/sweep/digits.yaml" in names and "solo_plugins/startup/sitecustomize.py" in names
    assert sum(n.endswith(".yaml") for n in names) >= 60

    venv = tmp_path / "venv"
    bin_dir = __import__("pathlib").Path(fresh_venv_seeing_this_interpreter(venv))
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", wheel], check=True,
                   capture_output=True, timeout=600)
    where = subprocess.run([str(bin_dir / "python"), "-c", "import solo_plugins; print(solo_plugins.__file__)"],
                           capture_output=True, text=True, timeout=300, check=True, cwd=tmp_path).stdout
    assert where.strip().startswith(str(venv))

    from solo_plugins.data.export import export_digits

    data = export_digits(tmp_path / "data" / "digits")
    empty = tmp_path / "empty"
    empty.mkdir()
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env.pop("SOLO_PLUGINS_CONFIGS", None)
    quick = ["max_epochs=1", "+limit_train_batches=2", "+limit_val_batches=0", "optimizer.batch_size=32"]
    run = subprocess.run(
        [str(bin_dir / "solo-plugins-pretrain"), "--config-name", "digits/dhel", f"data.train_path={data}/train",
         f"data.val_path={data}/val", f"checkpoint.dir={tmp_path}/trained", *quick],
        cwd=empty, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert glob.glob(str(tmp_path / "trained" / "dhel" / "*" / "*.ckpt"))
    env.pop("PYTHONWARNINGS")  # the console as a user sees it
    run = subprocess.run(
        [str(bin_dir / "solo-plugins"), "demo", "methods=[infonce]", "batch_sizes=[32]", "reference_rows=false",
         "linear_eval=false", "loss_vs_batch_size=false", "metrics_samples=64", f"out_dir={tmp_path}/demo",
         f"data_root={tmp_path}/demo-data", "pretrain_overrides=['max_epochs=1','+limit_train_batches=2','+limit_val_batches=0']"],
        cwd=empty, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| infonce |" in run.stdout and (tmp_path / "demo" / "results.csv").exists()
    assert os.listdir(empty) == []
    # A quiet console: a line per run and the tables, no warning; the run's output in its log.
    printed = run.stdout + run.stderr
    assert "warn" not in printed.lower() and "Epoch 0" not in printed, printed
    assert len(printed.splitlines()) <= 30, printed
    log = (tmp_path / "demo" / "runs" / "infonce-b32-s0" / "log.txt").read_text()
    assert "Epoch 0" in log and "Trainable params" in log
    help_text = subprocess.run([str(bin_dir / "solo-plugins"), "--help"], capture_output=True, text=True, timeout=300,
                               env=env, check=True).stdout
    for name in ("demo", "sweep", "pretrain", "linear", "knn", "metrics", "export", "identifiability", "run"):
        assert f"\n  {name} " in help_text, name
    version = subprocess.run([str(bin_dir / "solo-plugins"), "--version"], capture_output=True, text=True,
                             timeout=300, env=env, check=True)
    assert version.stdout.startswith("solo-plugins ") and version.stderr == ""
