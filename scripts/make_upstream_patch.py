"""Generates the two solo-learn pull requests as `git format-patch` series:

    python scripts/make_upstream_patch.py --solo /path/to/solo-learn [--author "Name <email>"]

- ``upstream/solo-learn/methods/``: DHEL, KCL and DCL (DCLW is DCL's ``weight_sigma``): losses,
  methods, their tests and docs, configs, README;
- ``upstream/solo-learn/dali-cpu/``: DALI's CPU pipelines built with ``device_id=None``.

The files the series create are kept as solo files under ``upstream/solo-learn/sources/<series>/``
(solo's tree, solo's style); they are not generated from this package, whose losses carry what
solo does not need (row tiles, uneven shards, multi-view forms). ``tests/test_upstream.py`` ties
the two: the upstream losses equal the package's to 1e-10 in float64, in one process and in two.
The generator adds those files, makes each config as a copy of solo's SimCLR config with only
the method's keys changed, applies small anchored edits to solo's files (the ``__init__`` lists,
the docs index, README, the DALI loader) that fail loudly when an anchor is gone, and commits
each step on a clean checkout of ``--base``.

Author: ``--author "Name <email>"``, else GIT_AUTHOR_NAME / GIT_AUTHOR_EMAIL, else git's
``user.name`` / ``user.email``. Date: ``--date``, else GIT_AUTHOR_DATE, else a fixed default, so
that the same inputs give byte-identical patches (``--zero-commit --full-index --no-signature``).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from typing import Callable, Dict, List, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UPSTREAM = os.path.join(REPO, "upstream", "solo-learn")
BASE = "9187ea3"
DEFAULT_DATE = "2026-12-02T00:00:00+00:00"

# config name -> (method, its keys in method_kwargs, replacing SimCLR's temperature)
CONFIGS = {
    "dhel": ("dhel", {"temperature": 0.3}),
    "kcl": ("kcl", {"kernel": "gaussian", "t": 2.0, "gamma": 16.0}),
    "dcl": ("dcl", {"temperature": 0.1}),
    "dclw": ("dcl", {"temperature": 0.1, "weight_sigma": 0.5}),
}
CONFIG_FOLDERS = ("scripts/pretrain/cifar", "scripts/pretrain/imagenet-100", "scripts/linear/imagenet-100")
#: The keys a config may change from solo's simclr.yaml (tests/test_upstream.py checks it).
CONFIG_KEYS = ("name", "method", "pretrain_method", "temperature", "kernel", "t", "gamma", "weight_sigma")


def sources(series: str) -> Dict[str, str]:
    """{path in solo's tree: text} of the files a series creates."""
    root = os.path.join(UPSTREAM, "sources", series)
    out = {}
    for folder, _, names in sorted(os.walk(root)):
        for name in sorted(names):
            if name.endswith((".py", ".rst")):
                path = os.path.join(folder, name)
                with open(path) as f:
                    out[os.path.relpath(path, root)] = f.read()
    return out


# ----------------------------------------------------------------- edits of solo's files


def _edit(path: str, change: Callable[[str], str]) -> None:
    with open(path) as f:
        before = f.read()
    after = change(before)
    if after == before:
        raise SystemExit(f"{path}: the edit found nothing to change")
    with open(path, "w") as f:
        f.write(after)


def _insert_after(text: str, anchor: str, addition: str) -> str:
    if anchor not in text:
        raise SystemExit(f"anchor not found: {anchor!r}")
    return text.replace(anchor, anchor + addition, 1)


def _sorted_insert(text: str, line: str, pattern: str) -> str:
    """Inserts ``line`` before the first line matching ``pattern`` whose captured name sorts
    after the new one (solo keeps these lists alphabetical)."""
    new_key = re.match(pattern, line).group(1).lower()
    for match in re.finditer(pattern, text):
        if match.group(1).lower() > new_key:
            return text[: match.start()] + line + text[match.start() :]
    raise SystemExit(f"no place found for {line!r}")


# solo's neighbour in each alphabetical list -> the new entry that follows it
AFTER = {"byol": "dcl", "deepclusterv2": "dhel", "dino": "kcl"}
CLASSES = {"dcl": "DCL", "dhel": "DHEL", "kcl": "KCL", "byol": "BYOL", "deepclusterv2": "DeepClusterV2", "dino": "DINO"}


def export_losses(solo: str) -> None:
    def change(text: str) -> str:
        for name in ("dcl", "dhel", "kcl"):
            text = _sorted_insert(text, f"from solo.losses.{name} import {name}_loss_func\n", r"from solo\.losses\.(\w+) import .*\n")
            text = _sorted_insert(text, f'    "{name}_loss_func",\n', r'    "(\w+)",\n')
        return text

    _edit(os.path.join(solo, "solo", "losses", "__init__.py"), change)


def register_methods(solo: str) -> None:
    """Imports, METHODS entries and __all__ names, each where alphabetical order puts it."""

    def change(text: str) -> str:
        for anchor, new in AFTER.items():
            old_cls, cls = CLASSES[anchor], CLASSES[new]
            text = _insert_after(text, f"from solo.methods.{anchor} import {old_cls}\n", f"from solo.methods.{new} import {cls}\n")
            text = _insert_after(text, f'    "{anchor}": {old_cls},\n', f'    "{new}": {cls},\n')
        # __all__ sorts BaseMethod after BYOL
        for anchor, cls in (("BaseMethod", "DCL"), ("DeepClusterV2", "DHEL"), ("DINO", "KCL")):
            text = _insert_after(text, f'    "{anchor}",\n', f'    "{cls}",\n')
        return text

    _edit(os.path.join(solo, "solo", "methods", "__init__.py"), change)


def index_docs(kind: str) -> Callable[[str], None]:
    def edit(solo: str) -> None:
        def change(text: str) -> str:
            for anchor, new in AFTER.items():
                text = _insert_after(text, f"   solo/{kind}/{anchor}\n", f"   solo/{kind}/{new}\n")
            return text

        _edit(os.path.join(solo, "docs", "source", "index.rst"), change)

    return edit


PAPERS = {"DCL and DCLW": "https://arxiv.org/abs/2110.06848", "DHEL and KCL": "https://arxiv.org/abs/2405.18045"}


def readme(solo: str) -> None:
    def change(text: str) -> str:
        for title, url in PAPERS.items():
            text = _sorted_insert(text, f"* [{title}]({url})\n", r"\* \[([^\]]+)\]\(https://arxiv[^)]*\)\n")
        return text

    _edit(os.path.join(solo, "README.md"), change)


def fix_dali_cpu(solo: str) -> None:
    """DALI wants ``device_id=None`` for a CPU-only pipeline; solo passes the local rank."""

    def change(text: str) -> str:
        import black

        text = re.sub(r"device_id=(\w+_pipeline_builder)\.device_id,",
                      r'device_id=\1.device_id if \1.device == "gpu" else None,', text)
        return black.format_str(text, mode=black.Mode(line_length=100))

    _edit(os.path.join(solo, "solo", "data", "dali_dataloader.py"), change)
    # solo's own DALI test builds CPU pipelines by hand with the builder's device_id
    _edit(os.path.join(solo, "tests", "dali", "test_dali_dataloader.py"), change)


# ----------------------------------------------------------------------------- configs


def _yaml(value) -> str:
    return str(value) if isinstance(value, (bool, int, float)) else f'"{value}"'


def write_configs(solo: str) -> None:
    """Each config is solo's simclr.yaml of its folder with the name, the method and the loss's
    keys changed (git shows it as a copy of simclr.yaml)."""
    for folder in CONFIG_FOLDERS:
        with open(os.path.join(solo, folder, "simclr.yaml")) as f:
            simclr = f.read()
        for config, (method, keys) in CONFIGS.items():
            text = simclr.replace('name: "simclr-', f'name: "{config}-', 1)
            if "pretrain" in folder:
                text = text.replace('method: "simclr"', f'method: "{method}"', 1)
                lines = "".join(f"  {k}: {_yaml(v)}\n" for k, v in keys.items())
                text, found = re.subn(r"^  temperature: .*\n", lines, text, count=1, flags=re.M)
                if not found:
                    raise SystemExit(f"{folder}/simclr.yaml: no method_kwargs.temperature to replace")
            else:
                text = text.replace('pretrain_method: "simclr"', f'pretrain_method: "{method}"', 1)
            if text.count(method) < 2:
                raise SystemExit(f"{folder}/simclr.yaml: could not make the {config} config")
            with open(os.path.join(solo, folder, f"{config}.yaml"), "w") as f:
                f.write(text)


# ------------------------------------------------------------------------------ series


def _add(series: str, prefixes: Tuple[str, ...]) -> Callable[[str], None]:
    def add(solo: str) -> None:
        for path, text in sources(series).items():
            if path.startswith(prefixes):
                os.makedirs(os.path.dirname(os.path.join(solo, path)), exist_ok=True)
                with open(os.path.join(solo, path), "w") as f:
                    f.write(text)

    return add


SERIES = {
    "methods": [
        (
            "Add the DHEL, KCL and DCL losses",
            "DHEL and KCL (Koromilas et al., ICML 2024, https://arxiv.org/abs/2405.18045) and\n"
            "DCL with its weighted form DCLW (Yeh et al., ECCV 2022,\n"
            "https://arxiv.org/abs/2110.06848), the baselines the DHEL/KCL paper compares\n"
            "with. Negatives come from the whole batch through solo's gather; the losses run\n"
            "in float32 with autocast disabled, which a bf16 test shows is needed.",
            [_add("methods", ("solo/losses/", "tests/losses/", "docs/source/solo/losses/")), export_losses,
             index_docs("losses")],
        ),
        (
            "Add the DHEL, KCL and DCL methods",
            "Two-view methods on BaseMethod with SimCLR's projector; DCLW is DCL with\n"
            "method_kwargs.weight_sigma. Defaults through omegaconf_select, checked with\n"
            "asserts that name the key and the accepted values.",
            [_add("methods", ("solo/methods/", "tests/methods/", "docs/source/solo/methods/")), register_methods,
             index_docs("methods")],
        ),
        (
            "Add DHEL, KCL, DCL and DCLW configs",
            "solo's SimCLR configs for CIFAR and ImageNet-100 with only the method's name and\n"
            "its loss keys changed (same backbone, head, optimizer and augmentations).",
            [write_configs],
        ),
        ("README: list DHEL, KCL, DCL and DCLW", "With their papers.", [readme]),
    ],
    "dali-cpu": [
        (
            "DALI: build CPU pipelines with device_id=None",
            "With dali.device: cpu, DALI still wanted a CUDA device because every pipeline\n"
            "was built with device_id=<local rank>. DALI's rule for CPU-only pipelines is\n"
            "device_id=None. tests/dali/test_dali_dataloader.py builds its CPU pipelines the\n"
            "same way, so solo's DALI tests now pass on a machine without CUDA.",
            [_add("dali-cpu", ("tests/dali/",)), fix_dali_cpu],
        ),
    ],
}


def identity(author: str = "", date: str = "") -> Dict[str, str]:
    """GIT_AUTHOR_*/GIT_COMMITTER_* for the commits: ``author`` "Name <email>", else the
    environment's GIT_AUTHOR_NAME/EMAIL, else git's configured user; ``date``, else
    GIT_AUTHOR_DATE, else the fixed default."""
    if author:
        match = re.fullmatch(r"\s*(.+?)\s*<([^<>\s]+@[^<>\s]+)>\s*", author)
        if not match:
            raise SystemExit(f"--author must be 'Name <email>'; got {author!r}")
        name, email = match.groups()
    else:
        def config(key):
            out = subprocess.run(["git", "config", key], capture_output=True, text=True)
            return out.stdout.strip()

        name = os.environ.get("GIT_AUTHOR_NAME") or config("user.name")
        email = os.environ.get("GIT_AUTHOR_EMAIL") or config("user.email")
        if not (name and email):
            raise SystemExit("no author: pass --author 'Name <email>' or set GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL")
    date = date or os.environ.get("GIT_AUTHOR_DATE") or DEFAULT_DATE
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email, "GIT_COMMITTER_DATE": date}


def _git(cwd: str, env: Dict[str, str], *args: str) -> str:
    return subprocess.run(["git", "-c", "core.autocrlf=false", *args], cwd=cwd, env={**os.environ, **env}, check=True,
                          capture_output=True, text=True).stdout


def make_series(solo: str, out: str, name: str, env: Dict[str, str], base: str = BASE) -> List[str]:
    """Commits the steps of series ``name`` on ``base`` in a clone of ``solo`` and writes them
    to ``out`` as a format-patch series (the configs as copies of simclr.yaml)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = os.path.join(tmp, "solo-learn")
        _git(tmp, env, "clone", "--quiet", "--no-checkout", os.path.abspath(solo), work)
        _git(work, env, "checkout", "--quiet", "-B", f"upstream-{name}", base)
        for subject, body, steps in SERIES[name]:
            for step in steps:
                step(work)
            _git(work, env, "add", "-A")
            _git(work, env, "commit", "--quiet", "-m", f"{subject}\n\n{body}\n")
        os.makedirs(out, exist_ok=True)
        for old in os.listdir(out):
            if old.endswith(".patch"):
                os.remove(os.path.join(out, old))
        _git(work, env, "format-patch", "--quiet", "--zero-commit", "--full-index", "--no-signature",
                     "-C85%", "--find-copies-harder", "-o", os.path.abspath(out), f"{base}..HEAD")
    return sorted(p for p in os.listdir(out) if p.endswith(".patch"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--solo", required=True, help="a git checkout of solo-learn")
    parser.add_argument("--out", default=UPSTREAM, help="writes <out>/methods and <out>/dali-cpu")
    parser.add_argument("--base", default=BASE, help="the commit the series apply to")
    parser.add_argument("--author", default="", help="'Name <email>' (default: GIT_AUTHOR_NAME/EMAIL)")
    parser.add_argument("--date", default="", help=f"commit date (default: GIT_AUTHOR_DATE, else {DEFAULT_DATE})")
    args = parser.parse_args()
    if not os.path.isdir(os.path.join(args.solo, ".git")):
        sys.exit(f"--solo {args.solo}: not a git checkout of solo-learn")
    env = identity(args.author, args.date)
    for name in SERIES:
        for patch in make_series(args.solo, os.path.join(args.out, name), name, env, args.base):
            print(os.path.join(args.out, name, patch))


if __name__ == "__main__":
    main()
