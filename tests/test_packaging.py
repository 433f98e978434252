import math

import pytest
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_fresh_venv_sees_this_interpreter_s_packages_not_only_the_base_ones(tmp_path):
    import os

    bin_dir = fresh_venv_seeing_this_interpreter(tmp_path / "venv")
    code = "import sys, torch, pytest; print(sys.prefix); print(torch.__file__)"
    out = subprocess.run([os.path.join(bin_dir, "python"), "-c", code], capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    import torch

    assert out[0] == str(tmp_path / "venv") and out[1] == torch.__file__


@pytest.mark.slow
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


# ------------------------------------------------------------ layers, hook, wheel, extras

HEAVY = ("lightning", "solo", "timm", "hydra", "omegaconf", "matplotlib", "sklearn", "scipy", "submitit", "wandb")


def _python(code, python=sys.executable, **kwargs):
    return subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=600, **kwargs)


@pytest.mark.slow
def test_the_core_imports_torch_and_the_standard_library_only():
    """0.3 imported solo-learn, lightning and timm with solo_plugins.losses (7.8 s)."""
    code = ("import sys, solo_plugins.losses, solo_plugins.metrics, solo_plugins.distributed\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    result = _python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
    assert _python("import solo.methods").returncode == 0  # solo-learn is installed: the test means it


def test_the_command_line_answers_without_importing_torch():
    code = ("import sys, contextlib, io\nfrom solo_plugins.cli import main\n"
            "for args in (['--help'], ['--version'], *[[name, '--help'] for name in "
            "('demo', 'sweep', 'pretrain', 'linear', 'knn', 'metrics', 'export', 'identifiability', 'run')]):\n"
            "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "        main(args)\n"
            "    assert out.getvalue().strip(), args\n"
            "print(sorted(m for m in ('torch', 'numpy', *" + repr(HEAVY) + ") if m in sys.modules))")
    result = _python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
    help_text = _python("from solo_plugins.cli import main; main(['pretrain', '--help'])").stdout
    assert "solo-plugins pretrain" in help_text and "[solo]" in help_text


# every warning shown (none folded by the default once-per-place filter), recorded in `caught`
_RECORD_WARNINGS = ("import warnings\nwarnings.simplefilter('always')\ncaught = []\n"
                    "warnings.showwarning = lambda m, *a, **k: caught.append(str(m))\n")
_OURS_ONCE = ("mine = [m for m in caught if 'solo-plugins' in m]\n"
              "assert len(mine) == 1 and {needle!r} in mine[0], mine\n")


def _prints_ok(code):
    result = _python(code + "\nprint('ok')")
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


@pytest.mark.slow
def test_import_solo_plugins_registers_only_once_solo_methods_executes():
    _prints_ok("import sys, solo_plugins\nassert 'solo' not in sys.modules and 'torch' not in sys.modules\n"
               "import solo.methods\nfrom solo.methods.base import BaseMethod\n"
               "assert {'dhel', 'kcl', 'dcl', 'dclw', 'infonce'} <= set(solo.methods.METHODS)\n"
               "assert 'small_cnn' in BaseMethod._BACKBONES")


@pytest.mark.slow
@pytest.mark.parametrize("first", ["solo_plugins.methods.config", "solo_plugins.methods._contrastive",
                                   "solo_plugins.commands.pretrain"])
def test_registration_waits_for_the_plugin_s_registry_when_the_plugin_imports_solo_methods_first(first):
    """`solo-plugins demo` from a wheel: solo.methods was first imported by
    solo_plugins.methods' own modules, and the registration found that package half-built."""
    _prints_ok(_RECORD_WARNINGS + "import sys\n"
               f"import {first}\n"
               "import solo.methods\nassert {'dhel', 'kcl', 'dcl', 'dclw', 'infonce'} <= set(solo.methods.METHODS)\n"
               "assert not [m for m in caught if 'solo-plugins' in m], caught")


@pytest.mark.slow
def test_a_name_solo_learn_already_has_gives_one_warning_and_keeps_solo_learn_s():
    """As with the upstream series, which gives solo-learn its own dhel."""
    _prints_ok(_RECORD_WARNINGS + "import solo.methods as m\nclass DHEL: pass\nm.METHODS['dhel'] = DHEL\n"
               "import solo_plugins\nsolo_plugins.autoregister.install()\nsolo_plugins.autoregister.register_once()\n"
               + _OURS_ONCE.format(needle="already has a method named 'dhel'")
               + "assert m.METHODS['dhel'] is DHEL and m.METHODS['kcl'].__module__ == 'solo_plugins.methods.kcl'")


@pytest.mark.slow
def test_a_registration_that_fails_warns_once_and_never_breaks_the_import():
    _prints_ok(_RECORD_WARNINGS + "import importlib.abc, sys\n"
               "class Blocked(importlib.abc.MetaPathFinder):\n"
               "    def find_spec(self, name, path, target=None):\n"
               "        if name == 'solo_plugins.methods':\n"
               "            raise ImportError('blocked for the test')\n"
               "sys.meta_path.insert(0, Blocked())\nimport solo_plugins, solo.methods\n"
               + _OURS_ONCE.format(needle="blocked for the test") + "assert 'dhel' not in solo.methods.METHODS")


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory):
    """The built wheel installed (not editable) into a fresh virtual environment that sees this
    interpreter's packages."""
    import glob
    import os

    tmp = tmp_path_factory.mktemp("wheel")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp / "wheels"), repo], check=True, capture_output=True, timeout=600)
    (wheel,) = glob.glob(str(tmp / "wheels" / "solo_plugins-*.whl"))
    bin_dir = fresh_venv_seeing_this_interpreter(tmp / "venv")
    subprocess.run([os.path.join(bin_dir, "python"), "-m", "pip", "install", "-q", "--no-deps", wheel], check=True,
                   capture_output=True, timeout=600)
    return wheel, os.path.join(bin_dir, "python")


@pytest.mark.slow
def test_the_wheel_s_pth_line_installs_the_hook_and_imports_nothing_heavy(installed_wheel, tmp_path):
    """Every Python of the environment runs the line: the finder is there before any user
    code imports solo_plugins, and neither torch nor anything heavy is imported."""
    import zipfile

    wheel, python = installed_wheel
    assert "solo_plugins.pth" in zipfile.ZipFile(wheel).namelist()
    code = ("import sys\n"
            "print(any(type(f).__name__ == 'SoloMethodsFinder' for f in sys.meta_path), "
            f"sorted(m for m in ('torch', 'numpy', *{HEAVY!r}) if m in sys.modules), "
            "sys.modules['solo_plugins'].__file__.startswith(sys.prefix))")
    result = _python(code, python, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "True [] True"


@pytest.mark.slow
def test_a_plain_solo_script_finds_method_dhel_in_both_ddp_ranks_of_a_non_editable_install(installed_wheel, tmp_path):
    """No `solo-plugins run`, no import of solo_plugins in the script: the .pth line does it, in
    the rank Lightning starts by re-running the script too. The same script under this
    (editable) interpreter, which has no .pth, does not find the method."""
    import os

    from tests.conftest import CONFIGS

    _, python = installed_wheel
    script = tmp_path / "main_pretrain.py"
    from tests.test_pipeline import _DDP_STAND_IN  # looks the method up as solo's scripts do

    script.write_text(_DDP_STAND_IN)
    for c in range(10):  # parse_cfg counts the class folders
        (tmp_path / "data" / str(c)).mkdir(parents=True)
    data = tmp_path / "data"
    args = ["--config-path", os.path.join(CONFIGS, "pretrain", "digits"), "--config-name", "dhel.yaml",
            "strategy=ddp", "devices='2'", f"data.train_path={data}", f"data.val_path={data}",
            "data.format=image_folder", "optimizer.batch_size=4"]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env.pop("PYTHONPATH", None)
    run = subprocess.run([python, str(script), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert [(tmp_path / f"trained-rank{r}.txt").read_text() for r in (0, 1)] == ["DHEL", "DHEL"]
    (tmp_path / "trained-rank0.txt").unlink()
    editable = subprocess.run([sys.executable, str(script), *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=600)
    assert editable.returncode != 0 and not (tmp_path / "trained-rank0.txt").exists()


def torch_only_venv(venv) -> str:
    """A new virtual environment holding torch and what torch requires, nothing else: a
    folder of links to those distributions' files (torch is too large to install again for a
    test), added to the environment's path by a .pth file. Returns its bin folder."""
    import importlib.metadata as md
    import os

    from packaging.requirements import Requirement

    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = os.path.join(venv, "bin", "python")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, timeout=300).stdout.strip()
    view = os.path.join(venv, "torch-only")
    os.makedirs(view)
    todo, seen = ["torch"], set()
    while todo:
        name = todo.pop()
        dist = md.distribution(name)
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
        tops = {f.parts[0] for f in dist.files or [] if f.parts[0] not in ("..", "__pycache__")}
        for top in tops:
            target = os.path.join(view, top)
            if not os.path.lexists(target) and os.path.exists(dist.locate_file(top)):
                os.symlink(dist.locate_file(top), target)
    with open(os.path.join(purelib, "_torch_only.pth"), "w") as f:
        f.write(view + "\n")
    return os.path.join(venv, "bin")


_EVERY_EXAMPLE = """
import doctest, importlib, pkgutil, sys
import solo_plugins.losses, solo_plugins.metrics, solo_plugins.distributed
modules = [solo_plugins.distributed] + [importlib.import_module(m.name) for p in (solo_plugins.losses, solo_plugins.metrics)
                                        for m in pkgutil.iter_modules(p.__path__, p.__name__ + ".")]
examples = {}
for module in modules:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, module.__name__
    examples[module.__name__] = result.attempted
public = {n: getattr(p, n) for p in (solo_plugins.losses, solo_plugins.metrics) for n in p.__all__}
finder = doctest.DocTestFinder()
without = [n for n, obj in public.items() if callable(obj) and not any(t.examples for t in finder.find(obj, n))]
print(sum(examples.values()), 'examples;', 'without one:', without)
"""


@pytest.mark.slow
def test_the_wheel_without_extras_works_in_a_torch_only_venv(tmp_path):
    """Installed with --no-deps next to torch alone: every docstring example of the losses,
    the metrics and the distributed helpers passes (every public name has one), the command
    line answers, and a subcommand that needs more names the extra to install."""
    import glob
    import os

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "wheels"), repo], check=True, capture_output=True, timeout=600)
    (wheel,) = glob.glob(str(tmp_path / "wheels" / "solo_plugins-*.whl"))
    bin_dir = torch_only_venv(tmp_path / "venv")
    python = os.path.join(bin_dir, "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", wheel], check=True, capture_output=True,
                   timeout=600)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SOLO_PLUGINS_CONFIGS")}
    absent = subprocess.run([python, "-c", "import importlib.util as u; print([m for m in ('numpy', 'lightning', "
                             "'solo', 'omegaconf', 'hydra', 'sklearn', 'pytest') if u.find_spec(m)])"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert absent.stdout.strip() == "[]", absent.stdout + absent.stderr  # the environment holds torch alone
    run = subprocess.run([python, "-c", _EVERY_EXAMPLE], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stdout.strip().endswith("without one: []"), run.stdout
    assert int(run.stdout.split()[0]) >= 50, run.stdout
    cli = os.path.join(bin_dir, "solo-plugins")
    assert "sweep" in subprocess.run([cli, "--help"], capture_output=True, text=True, env=env, timeout=300,
                                     check=True).stdout
    needs_more = subprocess.run([cli, "sweep"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert needs_more.returncode != 0
    assert "pip install 'solo-plugins[" in needs_more.stderr, needs_more.stderr
