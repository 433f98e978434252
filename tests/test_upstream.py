"""The solo-learn pull requests in upstream/solo-learn/{dhel-kcl,dcl,dali-cpu}, made by
scripts/make_upstream_patch.py from the solo files in upstream/solo-learn/sources.

Always: the committed series create exactly those sources, one method family each; every
config is a copy of solo's simclr.yaml that changes the method and its loss keys only; each
series adds at most 1,000 lines to solo/; the sources are clean under black and flake8 at
solo's 100 columns; the PR texts carry the measured rows and the GPU command; and the upstream
losses, loaded in a separate process where solo_plugins cannot be imported, equal this
package's losses in float64 (values and gradients to 1e-10), in one process and as two gloo
ranks against one process.

With SOLO_LEARN_CHECKOUT naming a git checkout of vturrisi/solo-learn: the series regenerate to
the same patches but for their From: and Date: lines, each applies with `git am -3` on 9187ea3
alone and the two method series together in either order (to the same tree), and solo-learn
then passes its own loss and method tests plus the new ones, its DALI tests on CPU, and trains
DHEL, KCL and DCL with its unmodified main_pretrain.py and evaluates them with main_linear.py,
with solo_plugins not importable.
"""

import glob
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO

UPSTREAM = os.path.join(REPO, "upstream", "solo-learn")
CHECKOUT = os.environ.get("SOLO_LEARN_CHECKOUT")
needs_checkout = pytest.mark.skipif(
    not CHECKOUT, reason="set SOLO_LEARN_CHECKOUT to a git checkout of vturrisi/solo-learn (base 9187ea3)"
)
WITHOUT_PLUGIN = "import sys; sys.modules['solo_plugins'] = None; "
# series -> (its methods, its configs)
FAMILIES = {"dhel-kcl": (("dhel", "kcl"), ("dhel", "kcl")), "dcl": (("dcl",), ("dcl", "dclw"))}
ALL_SERIES = ["dhel-kcl", "dcl", "dali-cpu"]


def _generator():
    spec = importlib.util.spec_from_file_location("make_upstream_patch", os.path.join(REPO, "scripts", "make_upstream_patch.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def patches(series: str):
    return sorted(glob.glob(os.path.join(UPSTREAM, series, "*.patch")))


def sections(patch: str):
    """(header, hunk lines) of each file of a format-patch file."""
    for section in re.split(r"^diff --git ", patch, flags=re.M)[1:]:
        header, _, body = section.partition("\n@@ ")
        yield header, ("@@ " + body).split("\n") if body else []


def created_files(patch: str) -> dict:
    """{path: content} of the files a format-patch file creates (not copies or edits)."""
    files = {}
    for header, hunk in sections(patch):
        if "\nnew file mode" in header:
            path = re.match(r"a/(\S+) b/", header).group(1)
            files[path] = "\n".join(line[1:] for line in hunk[1:] if line.startswith("+")) + "\n"
    return files


def committed(series: str) -> dict:
    files = {}
    for path in patches(series):
        with open(path) as f:
            files.update(created_files(f.read()))
    return files


@pytest.mark.parametrize("series", ALL_SERIES)
def test_committed_series_create_exactly_the_sources(series):
    expected = _generator().sources(series)
    assert expected and committed(series) == expected, "regenerate the series (README, Contributing upstream)"


@pytest.mark.parametrize("series", sorted(FAMILIES))
def test_each_method_series_holds_its_family_alone(series):
    files = committed(series)
    names = FAMILIES[series][0]
    for name in names:
        for path in (f"solo/losses/{name}.py", f"solo/methods/{name}.py", f"tests/losses/test_{name}.py",
                     f"tests/methods/test_{name}.py", f"docs/source/solo/losses/{name}.rst",
                     f"docs/source/solo/methods/{name}.rst"):
            assert path in files, path
    for path, text in files.items():
        assert "solo_plugins" not in text, path
        if path.endswith(".py"):
            assert text.startswith("# Copyright 2023 solo-learn development team."), path
    # one self-contained file per loss and per method: no new module besides them
    assert sorted(p for p in files if p.startswith("solo/")) == sorted(
        f"solo/{kind}/{name}.py" for kind in ("losses", "methods") for name in names)


def added_lines(series: str, prefix: str) -> int:
    count = 0
    for path in patches(series):
        with open(path) as f:
            for header, hunk in sections(f.read()):
                if re.match(r"a/\S+ b/(\S+)", header).group(1).startswith(prefix):
                    count += sum(1 for line in hunk if line.startswith("+") and not line.startswith("+++"))
    return count


@pytest.mark.parametrize("series", sorted(FAMILIES))
def test_each_method_series_adds_at_most_1000_lines_to_solo(series):
    lines = added_lines(series, "solo/")
    assert 150 < lines <= 1000, lines
    with open(os.path.join(UPSTREAM, series, "PULL_REQUEST.md")) as f:
        assert f"+{lines} lines in `solo/`" in f.read()  # the PR text says the count


@pytest.mark.parametrize("series", sorted(FAMILIES))
def test_each_pr_text_carries_measured_rows_and_the_gpu_command(series):
    with open(os.path.join(UPSTREAM, series, "PULL_REQUEST.md")) as f:
        text = f.read()
    for name in FAMILIES[series][1]:
        assert re.search(rf"^\| {name} \| [0-9.]+ ± [0-9.]+ \| [0-9.]+ ± [0-9.]+ \|", text, re.M), name  # Fashion-MNIST
        assert f"--config-name {name}.yaml" in text  # the command for the CIFAR rows
    assert "main_pretrain.py" in text and "data.dataset=cifar100" in text
    assert "estimate" in text.lower() or "measured on" in text.lower()


def test_the_sources_are_clean_under_black_and_flake8_at_100_columns():
    sources = os.path.join(UPSTREAM, "sources")
    black = subprocess.run([sys.executable, "-m", "black", "--line-length", "100", "--check", "-q", sources],
                           capture_output=True, text=True)
    assert black.returncode == 0, black.stderr
    flake8 = subprocess.run([sys.executable, "-m", "flake8", "--max-line-length", "100", sources],
                            capture_output=True, text=True)
    assert flake8.returncode == 0, flake8.stdout + flake8.stderr


def config_copies(series: str) -> dict:
    """{new config: (copied from, [(old line, new line) changes])} of a method series."""
    out = {}
    for path in patches(series):
        with open(path) as f:
            for header, hunk in sections(f.read()):
                copy = re.search(r"^copy from (\S+)\ncopy to (\S+)$", header, re.M)
                if copy:
                    out[copy.group(2)] = (copy.group(1), [line for line in hunk if line.startswith(("+", "-"))])
    return out


def _key(line: str) -> str:
    return line[1:].split(":", 1)[0].strip()


@pytest.mark.parametrize("series", sorted(FAMILIES))
def test_every_config_is_solos_simclr_config_with_only_the_method_keys_changed(series):
    copies = config_copies(series)
    generator = _generator()
    expected = {f"{folder}/{name}.yaml" for folder in generator.CONFIG_FOLDERS for name in FAMILIES[series][1]}
    assert set(copies) == expected
    for path, (source, changes) in copies.items():
        assert source == os.path.join(os.path.dirname(path), "simclr.yaml"), path
        assert changes, path
        bad = [line for line in changes if _key(line) not in generator.CONFIG_KEYS]
        assert not bad, (path, bad)
        assert {_key(line) for line in changes if line.startswith("-")} <= {"name", "method", "pretrain_method",
                                                                            "temperature"}, path
    if series != "dhel-kcl":
        return
    kcl = dict(line[1:].strip().split(": ", 1) for line in copies["scripts/pretrain/cifar/kcl.yaml"][1]
               if line.startswith("+"))
    assert kcl == {"name": '"kcl-cifar10" # change here for cifar100', "method": '"kcl"', "kernel": '"gaussian"',
                   "t": "2.0", "gamma": "16.0"}


def test_the_commit_author_comes_from_the_environment_or_the_option(monkeypatch, tmp_path):
    generator = _generator()
    env = generator.identity("Ada Lovelace <ada@example.org>", "2027-01-01T00:00:00+00:00")
    assert (env["GIT_AUTHOR_NAME"], env["GIT_AUTHOR_EMAIL"], env["GIT_COMMITTER_DATE"]) == (
        "Ada Lovelace", "ada@example.org", "2027-01-01T00:00:00+00:00")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Grace Hopper")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "grace@example.org")
    monkeypatch.delenv("GIT_AUTHOR_DATE", raising=False)
    env = generator.identity()
    assert (env["GIT_AUTHOR_NAME"], env["GIT_AUTHOR_EMAIL"]) == ("Grace Hopper", "grace@example.org")
    assert "GIT_AUTHOR_DATE" not in env and "GIT_COMMITTER_DATE" not in env  # git's own: the time of the commit
    monkeypatch.delenv("GIT_AUTHOR_NAME")
    monkeypatch.delenv("GIT_AUTHOR_EMAIL")
    monkeypatch.setenv("HOME", str(tmp_path))  # no user config
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "none"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="no author"):
        generator.identity()
    with pytest.raises(SystemExit, match="--author must be 'Name <email>'"):
        generator.identity("just a name")
    for path in sum((patches(s) for s in ALL_SERIES), []):
        with open(path) as f:
            head = f.read(400)
        assert "solo-plugins@users.noreply" not in head and re.search(r"^From: .+\n? ?<\S+@\S+>", head, re.M), path


# ------------------------------------------------------------- the same numbers as the package

CASES = [
    ("dhel", {"temperature": 0.3}),
    ("dhel", {"temperature": 0.3, "include_augs": False}),
    ("dhel", {"temperature": 0.05}),
    ("dcl", {"temperature": 0.1}),
    ("dcl", {"temperature": 0.1, "weight_sigma": 0.5}),
    ("dcl", {"temperature": 0.5, "weight_sigma": 0.2}),
    ("kcl", {"kernel": "gaussian", "t": 2.0, "gamma": 16.0}),
    ("kcl", {"kernel": "log", "t": 1.0, "gamma": 16.0}),
    ("kcl", {"kernel": "imq", "t": 2.0, "gamma": 4.0}),
    ("kcl", {"kernel": "riesz", "t": -1.0, "gamma": 16.0}),
    ("kcl", {"kernel": "riesz", "t": -0.5, "gamma": 4.0}),
]

UPSTREAM_LOSSES = r'''
import importlib, importlib.util, json, os, sys
sys.modules["solo_plugins"] = None
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

where, inputs, out = sys.argv[1], sys.argv[2], sys.argv[3]
CASES = json.loads(sys.argv[4])


def losses():
    if os.path.isdir(os.path.join(where, "solo")):  # a patched solo-learn tree
        sys.path.insert(0, where)
        import solo.losses as module
        assert module.__file__.startswith(where), module.__file__
        return {name: getattr(module, f"{name}_loss_func") for name in ("dhel", "kcl", "dcl")}
    out = {}  # the series' sources, on the installed solo-learn
    for name in ("dhel", "kcl", "dcl"):
        spec = importlib.util.spec_from_file_location(f"upstream_{name}", os.path.join(where, f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out[name] = getattr(module, f"{name}_loss_func")
    return out


def run(z1, z2, rows=slice(None)):
    funcs = losses()
    result = []
    for name, kwargs in CASES:
        a, b = z1[rows].clone().requires_grad_(), z2[rows].clone().requires_grad_()
        loss = funcs[name](a, b, **kwargs)
        loss.backward()
        result.append((loss.detach(), a.grad, b.grad))
    return result


def rank(r, world, init):
    dist.init_process_group("gloo", init_method=init, rank=r, world_size=world)
    z1, z2 = torch.load(inputs)
    n = z1.shape[0] // world
    torch.save(run(z1, z2, slice(r * n, (r + 1) * n)), f"{out}.rank{r}")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    z1, z2 = torch.load(inputs)
    single = run(z1, z2)
    mp.spawn(rank, args=(2, f"file://{out}.init"), nprocs=2, join=True)
    ranks = [torch.load(f"{out}.rank{r}") for r in range(2)]
    # DDP averages the ranks' gradients: the gathered objective is the mean of the ranks' losses
    two = [(sum(rk[k][0] for rk in ranks) / 2, torch.cat([rk[k][1] for rk in ranks]) / 2,
            torch.cat([rk[k][2] for rk in ranks]) / 2) for k in range(len(CASES))]
    torch.save({"single": single, "two": two}, out)
'''


def package_losses(z1, z2):
    from solo_plugins.losses import dcl_loss_func, dhel_loss_func, kcl_loss_func

    funcs = {"dhel": dhel_loss_func, "dcl": dcl_loss_func, "kcl": kcl_loss_func}
    result = []
    for name, kwargs in CASES:
        if kwargs.get("kernel") == "riesz":  # the package names the Riesz exponent s
            kwargs = {**kwargs, "s": kwargs["t"]}
            del kwargs["t"]
        a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
        loss = funcs[name](a, b, **kwargs, gather_distributed=True)
        loss.backward()
        result.append((loss.detach(), a.grad, b.grad))
    return result


def test_the_upstream_kcl_refuses_riesz_with_a_positive_exponent_as_the_package_does():
    """0.3's series accepted it: the alignment -2 d^(-t) has no lower bound."""
    spec = importlib.util.spec_from_file_location(
        "upstream_kcl", os.path.join(UPSTREAM, "sources", "dhel-kcl", "solo", "losses", "kcl.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    z1, z2 = torch.randn(6, 4), torch.randn(6, 4)
    with pytest.raises(ValueError, match=r"needs t < 0 .*no lower bound"):
        module.kcl_loss_func(z1, z2, kernel="riesz", t=1.0)
    assert torch.isfinite(module.kcl_loss_func(z1, z2, kernel="riesz", t=-1.0))


def upstream_losses(tmp_path, z1, z2, where):
    torch.save((z1, z2), tmp_path / "inputs.pt")
    script = tmp_path / "upstream_losses.py"
    script.write_text(UPSTREAM_LOSSES)
    out = tmp_path / "out.pt"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    run = subprocess.run([sys.executable, str(script), where, str(tmp_path / "inputs.pt"), str(out), json.dumps(CASES)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return torch.load(out)


def _assert_equal(ours, theirs):
    for (name, kwargs), (value, g1, g2), (v, h1, h2) in zip(CASES, ours, theirs):
        assert v.dtype == torch.float64, (name, kwargs)
        assert abs(float(value - v)) < 1e-10, (name, kwargs, float(value), float(v))
        assert (g1 - h1).abs().max() < 1e-10 and (g2 - h2).abs().max() < 1e-10, (name, kwargs)


@pytest.mark.slow
def test_upstream_losses_equal_the_package_in_one_process_and_on_two_ranks(tmp_path):
    generator = torch.Generator().manual_seed(0)
    z1 = torch.randn(12, 5, generator=generator, dtype=torch.float64)
    z2 = z1 + 0.5 * torch.randn(12, 5, generator=generator, dtype=torch.float64)
    sources = tmp_path / "sources"
    sources.mkdir()
    for series in FAMILIES:
        for path, text in _generator().sources(series).items():
            if path.startswith("solo/losses/"):
                (sources / os.path.basename(path)).write_text(text)
    result = upstream_losses(tmp_path, z1, z2, str(sources))
    ours = package_losses(z1, z2)
    _assert_equal(ours, result["single"])
    _assert_equal(ours, result["two"])


# ----------------------------------------------------------------------- with a checkout


def _run(args, cwd, env=None, timeout=1800):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def _without_identity(text: str) -> str:
    return re.sub(r"^(From: .*(\n [^\n]*)?|Date: .*)$", "", text, flags=re.M)


@needs_checkout
def test_series_regenerate_to_the_same_patches_but_their_author_and_date(tmp_path):
    generator = _generator()
    env = generator.identity("Another Contributor <another@example.org>")
    for series in generator.SERIES:
        names = generator.make_series(CHECKOUT, str(tmp_path / series), series, env)
        assert names == [os.path.basename(p) for p in patches(series)]
        for name in names:
            with open(tmp_path / series / name) as new, open(os.path.join(UPSTREAM, series, name)) as old:
                new_text, old_text = new.read(), old.read()
            assert "Another Contributor <another@example.org>" in new_text
            assert _without_identity(new_text) == _without_identity(old_text), name


def _apply(tree: str, *series: str) -> None:
    _run(["git", "clone", "--quiet", CHECKOUT, tree], cwd=REPO)
    _run(["git", "checkout", "--quiet", _generator().BASE], cwd=tree)
    identity = dict(os.environ, GIT_COMMITTER_NAME="test", GIT_COMMITTER_EMAIL="test@example.com")
    for name in series:
        _run(["git", "am", "-3", "--quiet", *patches(name)], cwd=tree, env=identity)


def _tree(tree: str) -> str:
    return _run(["git", "rev-parse", "HEAD^{tree}"], cwd=tree).stdout.strip()


@needs_checkout
def test_each_series_applies_alone_and_the_method_series_in_either_order(tmp_path):
    for series in ALL_SERIES:
        _apply(str(tmp_path / series), series)
    _apply(str(tmp_path / "a"), "dhel-kcl", "dcl")
    _apply(str(tmp_path / "b"), "dcl", "dhel-kcl")
    assert _tree(str(tmp_path / "a")) == _tree(str(tmp_path / "b"))


@pytest.fixture(scope="module")
def patched_solo(tmp_path_factory):
    tree = str(tmp_path_factory.mktemp("upstream") / "solo-learn")
    _apply(tree, "dhel-kcl", "dcl", "dali-cpu")
    env = dict(os.environ, PYTHONPATH=tree, PYTHONWARNINGS="ignore", WANDB_MODE="offline")
    env.pop("SOLO_PLUGINS_REGISTER", None)
    return tree, env


@needs_checkout
def test_upstream_losses_in_the_patched_tree_equal_the_package(patched_solo, tmp_path):
    tree, _ = patched_solo
    generator = torch.Generator().manual_seed(1)
    z1 = torch.randn(10, 6, generator=generator, dtype=torch.float64)
    z2 = torch.randn(10, 6, generator=generator, dtype=torch.float64)
    result = upstream_losses(tmp_path, z1, z2, tree)
    ours = package_losses(z1, z2)
    _assert_equal(ours, result["single"])
    _assert_equal(ours, result["two"])


@needs_checkout
def test_patched_solo_alone_registers_the_methods(patched_solo):
    tree, env = patched_solo
    check = (
        WITHOUT_PLUGIN + "import solo; from solo.methods import METHODS; from solo.losses import "
        "dhel_loss_func, kcl_loss_func, dcl_loss_func; "
        f"assert solo.__file__.startswith({tree!r}), solo.__file__; "
        "assert {'dhel', 'kcl', 'dcl'} <= set(METHODS), sorted(METHODS); print('ok')"
    )
    assert "ok" in _run([sys.executable, "-c", check], cwd=tree, env=env).stdout


@needs_checkout
def test_patched_solo_passes_its_loss_method_and_dali_tests_and_the_new_ones(patched_solo):
    tree, env = patched_solo
    run_pytest = WITHOUT_PLUGIN + "import pytest; sys.exit(pytest.main(sys.argv[1:]))"
    out = _run([sys.executable, "-c", run_pytest, "-q", "-p", "no:cacheprovider", "tests/losses", "tests/methods",
                "tests/dali"], cwd=tree, env=env).stdout
    passed = int(re.search(r"(\d+) passed", out).group(1))
    assert passed >= 60 and "failed" not in out, out[-2000:]
    print(out.strip().splitlines()[-1])


@needs_checkout
@pytest.mark.parametrize("method", ["dhel", "kcl", "dcl"])
def test_patched_solo_scripts_pretrain_and_evaluate(method, patched_solo, digits_root, tmp_path):
    tree, env = patched_solo
    run_script = WITHOUT_PLUGIN + "import runpy; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    cpu = ["accelerator=cpu", "devices='1'", "strategy=auto", "precision=32", "sync_batchnorm=False",
           "wandb.enabled=False", "auto_resume.enabled=False", "data.dataset=custom", "data.format=image_folder",
           f"data.train_path={digits_root}/train", f"data.val_path={digits_root}/val", "data.num_workers=1",
           "optimizer.batch_size=8", "max_epochs=1", "+limit_train_batches=2", "+limit_val_batches=1",
           f"checkpoint.dir={tmp_path}/trained_models"]
    _run([sys.executable, "-c", run_script, os.path.join(tree, "main_pretrain.py"), "--config-path",
          os.path.join(tree, "scripts", "pretrain", "cifar"), "--config-name", f"{method}.yaml", *cpu],
         cwd=tmp_path, env=env)
    (ckpt,) = glob.glob(str(tmp_path / "trained_models" / method / "*" / "*.ckpt"))
    _run([sys.executable, "-c", run_script, os.path.join(tree, "main_linear.py"), "--config-path",
          os.path.join(tree, "scripts", "linear", "imagenet-100"), "--config-name", f"{method}.yaml", *cpu,
          f"pretrained_feature_extractor='{ckpt}'"], cwd=tmp_path, env=env)
    assert glob.glob(str(tmp_path / "trained_models" / "linear" / "*" / "*.ckpt"))
