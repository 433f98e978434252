"""Generates the solo-learn pull requests as `git format-patch` series:

    python scripts/make_upstream_patch.py --solo /path/to/solo-learn [--author "Name <email>"]

- ``upstream/solo-learn/dhel-kcl/``: DHEL and KCL, the paper's methods: losses, methods, their
  tests and docs, configs, the test scripts' method lists, README;
- ``upstream/solo-learn/dcl/``: DCL and DCLW (DCL's ``weight_sigma``), the baselines, the same way;
- ``upstream/solo-learn/dali-cpu/``: DALI's CPU pipelines built with ``device_id=None``.

Each series applies to solo-learn 9187ea3 alone, and the first two together in either order
(``git am -3``): where both edit one of solo's files, each inserts its own lines at its own
place, with at least one line of solo's between them.

The files the series create are kept as solo files under ``upstream/solo-learn/sources/<series>/``
(solo's tree, solo's style); they are not generated from this package, whose losses carry what
solo does not need (row tiles, uneven shards, multi-view forms). ``tests/test_upstream.py`` ties
the two: the upstream losses equal the package's to 1e-10 in float64, in one process and in two.
The generator adds those files, makes each config as a copy of solo's SimCLR config with only
the method's keys changed, applies small anchored edits to solo's files (the ``__init__`` lists,
the docs index, the test scripts' lists, README, the DALI loader) that fail loudly when an
anchor is gone, and commits each step on a clean checkout of ``--base``.

Author: ``--author "Name <email>"``, else GIT_AUTHOR_NAME / GIT_AUTHOR_EMAIL, else git's
``user.name`` / ``user.email``. Date: ``--date``, else GIT_AUTHOR_DATE, else now, as git does.
Regenerating gives the same patches but for their From: and Date: lines
(``--zero-commit --full-index --no-signature``).
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

# config name -> (method, its keys in method_kwargs, replacing SimCLR's temperature)
CONFIGS = {
    "dhel": ("dhel", {"temperature": 0.3}),
    "kcl": ("kcl", {"kernel": "gaussian", "t": 2.0, "gamma": 16.0}),
    "dcl": ("dcl", {"temperature": 0.1}),
    "dclw": ("dcl", {"temperature": 0.1, "weight_sigma": 0.5}),
}
# series -> its methods, its configs, and where its lines go in the lists both series extend
# (0: right after solo's anchor line, 1: one line further, so that the two never touch)
FAMILIES = {
    "dhel-kcl": (("dhel", "kcl"), ("dhel", "kcl"), 0),
    "dcl": (("dcl",), ("dcl", "dclw"), 1),
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


def export_losses(names: Tuple[str, ...]) -> Callable[[str], None]:
    def edit(solo: str) -> None:
        def change(text: str) -> str:
            for name in names:
                line = f"from solo.losses.{name} import {name}_loss_func\n"
                text = _sorted_insert(text, line, r"from solo\.losses\.(\w+) import .*\n")
                text = _sorted_insert(text, f'    "{name}_loss_func",\n', r'    "(\w+)",\n')
            return text

        _edit(os.path.join(solo, "solo", "losses", "__init__.py"), change)

    return edit


# __all__ sorts BaseMethod after BYOL
ALL_AFTER = {"dcl": "BaseMethod", "dhel": "DeepClusterV2", "kcl": "DINO"}


def register_methods(names: Tuple[str, ...]) -> Callable[[str], None]:
    """Imports, METHODS entries and __all__ names, each where alphabetical order puts it."""

    def edit(solo: str) -> None:
        def change(text: str) -> str:
            for anchor, new in AFTER.items():
                if new not in names:
                    continue
                old_cls, cls = CLASSES[anchor], CLASSES[new]
                line = f"from solo.methods.{new} import {cls}\n"
                text = _insert_after(text, f"from solo.methods.{anchor} import {old_cls}\n", line)
                text = _insert_after(text, f'    "{anchor}": {old_cls},\n', f'    "{new}": {cls},\n')
                text = _insert_after(text, f'    "{ALL_AFTER[new]}",\n', f'    "{cls}",\n')
            return text

        _edit(os.path.join(solo, "solo", "methods", "__init__.py"), change)

    return edit


def index_docs(kind: str, names: Tuple[str, ...]) -> Callable[[str], None]:
    def edit(solo: str) -> None:
        def change(text: str) -> str:
            for anchor, new in AFTER.items():
                if new in names:
                    text = _insert_after(text, f"   solo/{kind}/{anchor}\n", f"   solo/{kind}/{new}\n")
            return text

        _edit(os.path.join(solo, "docs", "source", "index.rst"), change)

    return edit


PAPERS = {"DCL and DCLW": "https://arxiv.org/abs/2110.06848", "DHEL and KCL": "https://arxiv.org/abs/2405.18045"}


def readme(title: str) -> Callable[[str], None]:
    def edit(solo: str) -> None:
        def change(text: str) -> str:
            line = f"* [{title}]({PAPERS[title]})\n"
            return _sorted_insert(text, line, r"\* \[([^\]]+)\]\(https://arxiv[^)]*\)\n")

        _edit(os.path.join(solo, "README.md"), change)

    return edit


# solo's test scripts run every config of a folder from a bash list; main_linear's pairs each
# method with a checkpoint path by position, so both lists grow at their ends.
SCRIPT_LISTS = (
    ("tests/scripts/pretrain/test_cifar_scripts.sh", ()),
    ("tests/scripts/pretrain/test_imagenet100_scripts.sh", ()),
    ("tests/scripts/linear/test_imagenet100_scripts.sh", ("PRETRAINED_PATHS",)),
)


def _insert_below(lines: List[str], index: int, offset: int, line: str) -> None:
    if index + offset >= len(lines):
        raise SystemExit(f"no line {offset} below {lines[index]!r}")
    lines.insert(index + offset + 1, line)


def extend_script_lists(configs: Tuple[str, ...], offset: int) -> Callable[[str], None]:
    """``METHODS+=(...)`` below solo's ``METHODS=(...)`` line of each test script (and the
    checkpoint paths below ``PRETRAINED_PATHS=(...)``), ``offset`` lines further down."""

    def edit(solo: str) -> None:
        for path, paired in SCRIPT_LISTS:
            def change(text: str) -> str:
                lines = text.split("\n")
                at = [i for i, line in enumerate(lines) if line.startswith("METHODS=(")]
                if len(at) != 1:
                    raise SystemExit(f"{path}: expected one METHODS=( line")
                names = " ".join(f'"{c}"' for c in configs)
                for name in paired:
                    start = [i for i, line in enumerate(lines) if line.startswith(f"{name}=(")]
                    end = next(i for i in range(start[0], len(lines)) if lines[i] == ")")
                    paths = " ".join(f'\\"PATH-TO-{c.upper()}-MODEL\\"' for c in configs)
                    _insert_below(lines, end, offset, f"{name}+=({paths})")
                _insert_below(lines, at[0], offset, f"METHODS+=({names})")
                return "\n".join(lines)

            _edit(os.path.join(solo, path), change)

    return edit


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


def write_configs(configs: Tuple[str, ...]) -> Callable[[str], None]:
    return lambda solo: _write_configs(solo, configs)


def _write_configs(solo: str, configs: Tuple[str, ...]) -> None:
    """Each config is solo's simclr.yaml of its folder with the name, the method and the loss's
    keys changed (git shows it as a copy of simclr.yaml)."""
    for folder in CONFIG_FOLDERS:
        with open(os.path.join(solo, folder, "simclr.yaml")) as f:
            simclr = f.read()
        for config in configs:
            method, keys = CONFIGS[config]
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


def family(series: str, title: str, losses_note: str, methods_note: str) -> List[Tuple[str, str, List]]:
    """The four commits of a method family's series: losses, methods, configs, README."""
    methods, configs, offset = FAMILIES[series]
    names = " and ".join(m.upper() for m in methods)
    config_names = ", ".join(c.upper() for c in configs)
    return [
        (
            f"Add the {names} loss{'es' if len(methods) > 1 else ''}",
            losses_note,
            [_add(series, ("solo/losses/", "tests/losses/", "docs/source/solo/losses/")), export_losses(methods),
             index_docs("losses", methods)],
        ),
        (
            f"Add the {names} method{'s' if len(methods) > 1 else ''}",
            methods_note,
            [_add(series, ("solo/methods/", "tests/methods/", "docs/source/solo/methods/")),
             register_methods(methods), index_docs("methods", methods)],
        ),
        (
            f"Add {config_names} configs",
            "solo's SimCLR configs for CIFAR and ImageNet-100 with only the method's name and\n"
            "its loss keys changed (same backbone, head, optimizer and augmentations), and\n"
            "the methods in the lists of tests/scripts.",
            [write_configs(configs), extend_script_lists(configs, offset)],
        ),
        (f"README: list {title}", "With the paper.", [readme(title)]),
    ]


SERIES = {
    "dhel-kcl": family(
        "dhel-kcl", "DHEL and KCL",
        "DHEL and KCL (Koromilas et al., ICML 2024, https://arxiv.org/abs/2405.18045).\n"
        "Negatives come from the whole batch through solo's gather; the losses run in\n"
        "float32 with autocast disabled (a bf16-autocast test checks it) and reject a\n"
        "global batch of one sample.",
        "Two-view methods on BaseMethod with SimCLR's projector. Defaults through\n"
        "omegaconf_select, checked with asserts that name the key and the accepted values.",
    ),
    "dcl": family(
        "dcl", "DCL and DCLW",
        "DCL and its weighted form DCLW (Yeh et al., ECCV 2022,\n"
        "https://arxiv.org/abs/2110.06848). Negatives come from the whole batch through\n"
        "solo's gather, DCLW's weights from concat_all_gather_no_grad; the loss runs in\n"
        "float32 with autocast disabled (a bf16-autocast test checks it) and rejects a\n"
        "global batch of one sample.",
        "A two-view method on BaseMethod with SimCLR's projector; DCLW is DCL with\n"
        "method_kwargs.weight_sigma. Defaults through omegaconf_select, checked with\n"
        "asserts that name the key and the accepted values.",
    ),
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
    GIT_AUTHOR_DATE, else none (git takes the time of the commit)."""
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
    env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": name,
           "GIT_COMMITTER_EMAIL": email}
    date = date or os.environ.get("GIT_AUTHOR_DATE")
    if date:
        env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    return env


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
    parser.add_argument("--out", default=UPSTREAM, help="writes <out>/<series> for each series")
    parser.add_argument("--base", default=BASE, help="the commit the series apply to")
    parser.add_argument("--author", default="", help="'Name <email>' (default: GIT_AUTHOR_NAME/EMAIL)")
    parser.add_argument("--date", default="", help="commit date (default: GIT_AUTHOR_DATE, else now)")
    args = parser.parse_args()
    if not os.path.isdir(os.path.join(args.solo, ".git")):
        sys.exit(f"--solo {args.solo}: not a git checkout of solo-learn")
    env = identity(args.author, args.date)
    for name in SERIES:
        for patch in make_series(args.solo, os.path.join(args.out, name), name, env, args.base):
            print(os.path.join(args.out, name, patch))


if __name__ == "__main__":
    main()
