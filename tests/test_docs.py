"""The documentation: every public loss and metric has a runnable example in its docstring,
the examples pass as doctests, and the Sphinx site builds with warnings as errors (when
Sphinx is installed, as docs/requirements.txt pins it; CI installs it)."""

import doctest
import importlib
import inspect
import os
import pkgutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

import solo_plugins.losses
import solo_plugins.metrics

PUBLIC = [(package, name) for package in (solo_plugins.losses, solo_plugins.metrics) for name in package.__all__]


@pytest.mark.parametrize("package,name", PUBLIC, ids=[f"{p.__name__}.{n}" for p, n in PUBLIC])
def test_every_public_loss_and_metric_has_an_example(package, name):
    obj = getattr(package, name)
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        return  # a constant (KERNELS)
    assert ">>>" in (obj.__doc__ or ""), f"{package.__name__}.{name} has no example in its docstring"


def _modules(package):
    yield package
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        yield importlib.import_module(info.name)


@pytest.mark.parametrize("package", [solo_plugins.losses, solo_plugins.metrics], ids=["losses", "metrics"])
def test_the_docstring_examples_pass_as_doctests(package):
    attempted = 0
    for module in _modules(package):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
        assert result.failed == 0, f"{module.__name__}: {result.failed} failing examples"
        attempted += result.attempted
    assert attempted >= 20


@pytest.mark.slow
@pytest.mark.slow
def test_the_site_builds_with_warnings_as_errors(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    pytest.importorskip("furo")
    out = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                          os.path.join(REPO, "docs"), str(tmp_path / "html")], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    api = (tmp_path / "html" / "reference" / "api.html").read_text()
    for package, name in PUBLIC:
        assert f"{package.__name__}.{name}" in api, name
    for page in ("methods/dhel", "methods/kcl", "methods/dcl", "methods/infonce", "methods/multiview"):
        assert (tmp_path / "html" / f"{page}.html").exists(), page
