"""Generates the solo-learn pull request, as a `git format-patch` series, from this package.

    python scripts/make_upstream_patch.py --solo /path/to/solo-learn --out upstream/solo-learn

The losses and methods are this package's own modules with their imports rewritten to solo's
layout (``MODULES``), solo's license header on top, formatted as solo formats (isort, then
black at line length 100). Solo's existing files (the ``__init__`` lists, README, DALI loader)
get small anchored edits that fail loudly when the anchor is gone. The tests, written for
solo's tree, live in ``upstream/templates``. Configs start from solo's own SimCLR configs,
with this package's method keys.

The checkout must be at the base commit (``--base``, default solo-learn 9187ea3). Commits are
made with a fixed author and date and written with ``--zero-commit --full-index
--no-signature``, so the same inputs give byte-identical patches.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from typing import Callable, Dict, List, Tuple

import black
import isort
from omegaconf import OmegaConf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATES = os.path.join(REPO, "upstream", "templates")
BASE = "9187ea3"
AUTHOR = ("solo-plugins", "solo-plugins@users.noreply.github.com", "2026-11-30T00:00:00+00:00")

# this package's module -> solo-learn's module
MODULES = {
    "solo_plugins.distributed": "solo.utils.misc",
    "solo_plugins.losses._common": "solo.losses.contrastive_utils",
    "solo_plugins.losses._tiled": "solo.losses.tiled",
    "solo_plugins.losses.dcl": "solo.losses.dcl",
    "solo_plugins.losses.dhel": "solo.losses.dhel",
    "solo_plugins.losses.kcl": "solo.losses.kcl",
    "solo_plugins.losses.multiview": "solo.losses.multiview",
    "solo_plugins.losses": "solo.losses",
    "solo_plugins.methods.config": "solo.utils.config_checks",
    "solo_plugins.methods._contrastive": "solo.methods.contrastive_base",
    "solo_plugins.methods.chunked_forward": "solo.methods.chunked_forward",
    "solo_plugins.methods.dcl": "solo.methods.dcl",
    "solo_plugins.methods.dclw": "solo.methods.dclw",
    "solo_plugins.methods.dhel": "solo.methods.dhel",
    "solo_plugins.methods.kcl": "solo.methods.kcl",
}
LOSS_FUNCS = {
    "dcl": ["dcl_loss_func"],
    "dhel": ["dhel_loss_func"],
    "kcl": ["kcl_loss_func"],
    "multiview": ["mv_dhel_loss_func", "mv_infonce_loss_func", "mv_kcl_loss_func"],
}
METHOD_CLASSES = {"dcl": "DCL", "dclw": "DCLW", "dhel": "DHEL", "kcl": "KCL"}
PAPERS = {
    "DCL and DCLW": "https://arxiv.org/abs/2110.06848",
    "DHEL and KCL": "https://arxiv.org/abs/2405.18045",
}


def module_file(module: str) -> str:
    return module.replace(".", "/") + ".py"


def rewrite_imports(source: str) -> str:
    for ours in sorted(MODULES, key=len, reverse=True):
        source = re.sub(rf"\b{re.escape(ours)}\b", MODULES[ours], source)
    left = re.findall(r".*solo_plugins.*", source)
    if left:
        raise SystemExit(f"references to solo_plugins left after rewriting: {left}")
    return source


def solo_format(source: str) -> str:
    """isort as solo's files read (stdlib, then torch/solo/... in one group), then black 100."""
    source = isort.code(
        source, profile="black", line_length=100, known_third_party=["solo"], default_section="THIRDPARTY"
    )
    return black.format_str(source, mode=black.Mode(line_length=100))


def license_header(solo: str) -> str:
    """The comment block solo puts on top of its files (taken from one of them)."""
    lines = []
    with open(os.path.join(solo, "solo", "losses", "simclr.py")) as f:
        for line in f:
            if not (line.startswith("#") or line.strip() == ""):
                break
            lines.append(line)
    return "".join(lines).rstrip("\n") + "\n\n"


def ported_module(ours: str, header: str) -> str:
    with open(os.path.join(REPO, module_file(ours))) as f:
        return header + solo_format(rewrite_imports(f.read()))


def template(path: str, header: str) -> str:
    with open(os.path.join(TEMPLATES, path)) as f:
        return header + solo_format(f.read())


def code_files(solo: str) -> Dict[str, str]:
    """The Python files the series creates, by path in solo's tree: the ported modules and
    the tests. ``solo`` only provides the license header, so the installed package will do."""
    header = license_header(solo)
    files = {
        module_file(theirs): ported_module(ours, header)
        for ours, theirs in MODULES.items()
        if theirs not in ("solo.utils.misc", "solo.losses")
    }
    for root, _, names in sorted(os.walk(TEMPLATES)):
        for name in sorted(names):
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(root, name), TEMPLATES)
                files[rel] = template(rel, header)
    return files


def new_files(solo: str) -> Dict[str, str]:
    """Every file the series creates (no edits of existing files); needs a checkout."""
    return {**code_files(solo), **configs(solo)}


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


def append_gather(solo: str) -> None:
    """The distributed helpers go at the end of solo/utils/misc.py, next to solo's gather."""
    with open(os.path.join(REPO, "solo_plugins", "distributed.py")) as f:
        ours = f.read()
    docstring, body = re.match(r'"""(.*?)"""\n(.*)', ours, re.S).groups()
    body = re.sub(r"^(from typing import|import torch|import torch.distributed|import contextlib|import threading).*\n",
                  "", body, flags=re.M)
    comment = "".join(f"# {line}".rstrip() + "\n" for line in docstring.strip().splitlines())

    def change(text: str) -> str:
        text = text.replace(
            "from typing import Dict, List, Optional, Tuple",
            "from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple",
            1,
        )
        text = text.replace("import logging\n", "import contextlib\nimport logging\n", 1)
        text = text.replace("import os\n", "import os\nimport threading\n", 1)
        return black.format_str(
            text.rstrip("\n") + "\n\n\n" + comment + body.lstrip("\n"), mode=black.Mode(line_length=100)
        )

    _edit(os.path.join(solo, "solo", "utils", "misc.py"), change)


def export_losses(solo: str) -> None:
    def change(text: str) -> str:
        for name, funcs in LOSS_FUNCS.items():
            line = f"from solo.losses.{name} import {', '.join(funcs)}\n"
            text = _sorted_insert(text, line, r"from solo\.losses\.(\w+) import .*\n")
            for func in funcs:
                text = _sorted_insert(text, f'    "{func}",\n', r'    "(\w+)",\n')
        return text

    _edit(os.path.join(solo, "solo", "losses", "__init__.py"), change)


def register_methods(solo: str) -> None:
    """Imports, METHODS entries and __all__ names, each where alphabetical order puts it."""
    after = {"byol": ("dcl", "dclw"), "deepclusterv2": ("dhel",), "dino": ("kcl",)}
    solo_class = {"byol": "BYOL", "deepclusterv2": "DeepClusterV2", "dino": "DINO"}
    names_after = {"BaseMethod": ("dcl", "dclw"), "DeepClusterV2": ("dhel",), "DINO": ("kcl",)}

    def change(text: str) -> str:
        for anchor, methods in after.items():
            cls = solo_class[anchor]
            imports = "".join(f"from solo.methods.{m} import {METHOD_CLASSES[m]}\n" for m in methods)
            text = _insert_after(text, f"from solo.methods.{anchor} import {cls}\n", imports)
            entries = "".join(f'    "{m}": {METHOD_CLASSES[m]},\n' for m in methods)
            text = _insert_after(text, f'    "{anchor}": {cls},\n', entries)
        for anchor, methods in names_after.items():
            names = "".join(f'    "{METHOD_CLASSES[m]}",\n' for m in methods)
            text = _insert_after(text, f'    "{anchor}",\n', names)
        return text

    _edit(os.path.join(solo, "solo", "methods", "__init__.py"), change)


def _sorted_insert(text: str, line: str, pattern: str) -> str:
    """Inserts ``line`` before the first line matching ``pattern`` whose captured name sorts
    after the new one (solo keeps these lists alphabetical)."""
    new_key = re.match(pattern, line).group(1).lower()
    for match in re.finditer(pattern, text):
        if match.group(1).lower() > new_key:
            return text[: match.start()] + line + text[match.start() :]
    raise SystemExit(f"no place found for {line!r}")


def document(solo: str) -> None:
    def change(text: str) -> str:
        for title, url in PAPERS.items():
            text = _sorted_insert(text, f"* [{title}]({url})\n", r"\* \[([^\]]+)\]\(https://arxiv[^)]*\)\n")
        return _insert_after(
            text,
            "Checkpoints are no longer available as of 2026. Re-running the scripts will yield the same "
            "results indicated below.\n",
            "\nDCL, DCLW, DHEL and KCL: results pending. Their configs are in `scripts/pretrain`; they "
            "have been tested on CPU only and no GPU run of them has been made yet.\n",
        )

    _edit(os.path.join(solo, "README.md"), change)


def fix_dali_cpu(solo: str) -> None:
    """DALI wants ``device_id=None`` for a CPU-only pipeline; solo passes the local rank."""

    def change(text: str) -> str:
        text = re.sub(
            r"device_id=(\w+_pipeline_builder)\.device_id,",
            r'device_id=\1.device_id if \1.device == "gpu" else None,',
            text,
        )
        return black.format_str(text, mode=black.Mode(line_length=100))

    _edit(os.path.join(solo, "solo", "data", "dali_dataloader.py"), change)
    # solo's own DALI test builds CPU pipelines by hand with the builder's device_id
    _edit(os.path.join(solo, "tests", "dali", "test_dali_dataloader.py"), change)


# ----------------------------------------------------------------------------- configs


def _method_kwargs(method: str) -> Dict:
    cfg = OmegaConf.load(os.path.join(REPO, "configs", "pretrain", "cifar10", f"{method}.yaml"))
    return OmegaConf.to_container(cfg.method_kwargs)


def _yaml_value(value) -> str:
    return str(value) if isinstance(value, (bool, int, float)) else f'"{value}"'


def configs(solo: str) -> Dict[str, str]:
    """Solo's SimCLR recipe per dataset with this method's name and method_kwargs: in solo's
    tables the new rows then differ from SimCLR's in the loss (and head) alone."""
    out = {}
    for folder in ("scripts/pretrain/cifar", "scripts/pretrain/imagenet-100", "scripts/linear/imagenet-100"):
        with open(os.path.join(solo, folder, "simclr.yaml")) as f:
            simclr = f.read()
        for method in METHOD_CLASSES:
            text = simclr.replace('name: "simclr-', f'name: "{method}-', 1)
            if "pretrain" in folder:
                kwargs = "".join(f"  {k}: {_yaml_value(v)}\n" for k, v in _method_kwargs(method).items())
                text = text.replace('method: "simclr"', f'method: "{method}"', 1)
                text = re.sub(r"method_kwargs:\n(  .*\n)+", "method_kwargs:\n" + kwargs, text, count=1)
            else:
                text = text.replace('pretrain_method: "simclr"', f'pretrain_method: "{method}"', 1)
            if text.count(method) < 2:
                raise SystemExit(f"{folder}/simclr.yaml: could not make the {method} config")
            out[f"{folder}/{method}.yaml"] = text
    return out


# ------------------------------------------------------------------------------ series


def _paths(prefixes: Tuple[str, ...], files: Dict[str, str]) -> List[str]:
    return [p for p in files if p.startswith(prefixes)]


STEPS = [
    (
        "Add the DHEL, KCL and DCL losses and their multi-view forms",
        "DHEL and KCL (Koromilas et al., ICML 2024, https://arxiv.org/abs/2405.18045) and\n"
        "DCL/DCLW (Yeh et al., ECCV 2022, https://arxiv.org/abs/2110.06848), with their\n"
        "alignment and uniformity parts, in log space and float32 under mixed precision;\n"
        "MV-DHEL and MV-InfoNCE as in the authors' Multi-View-CL code, and MV-KCL, for\n"
        "V >= 2 views (with V = 2, MV-DHEL is DHEL and MV-KCL is KCL).\n"
        "Negatives come from the global batch: solo.utils.misc gains gather_rows, a gather\n"
        "with gradients that also handles ranks holding different numbers of rows.",
        ("solo/losses/", "tests/losses/"),
        [append_gather, export_losses],
    ),
    (
        "Add the DHEL, KCL, DCL and DCLW methods",
        "Contrastive methods on BaseMethod sharing one base class: with 2 large crops the\n"
        "two-view loss; with more crops, large or small, every crop is a view and DHEL and\n"
        "KCL take their multi-view loss (DCL and DCLW refuse, naming why). The projector\n"
        "is solo's SimCLR head by default; projector: paper is the head of the paper's\n"
        "codebase (AndrewAtanov/simclr-pytorch). Config errors name the key and the\n"
        "accepted values (solo.utils.config_checks).",
        ("solo/methods/", "solo/utils/config_checks.py", "tests/methods/"),
        [register_methods],
    ),
    (
        "Add pretrain and linear configs for DHEL, KCL, DCL and DCLW",
        "SimCLR's recipe for CIFAR and ImageNet-100 with each method's own keys.",
        ("scripts/",),
        [],
    ),
    (
        "README: list DHEL, KCL, DCL and DCLW",
        "With the papers, and a note that their results are pending a GPU run.",
        (),
        [document],
    ),
    (
        "DALI: build CPU pipelines with device_id=None",
        "With dali.device: cpu, DALI still wanted a CUDA device because every pipeline\n"
        "was built with device_id=<local rank>. DALI's rule for CPU-only pipelines is\n"
        "device_id=None. tests/dali/test_dali_dataloader.py builds its CPU pipelines the\n"
        "same way, so solo's DALI tests now pass on a machine without CUDA.",
        ("tests/dali/",),
        [fix_dali_cpu],
    ),
]


def _git(cwd: str, *args: str) -> str:
    name, email, date = AUTHOR
    env = dict(os.environ, GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email, GIT_AUTHOR_DATE=date,
               GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email, GIT_COMMITTER_DATE=date)
    return subprocess.run(["git", "-c", "core.autocrlf=false", *args], cwd=cwd, env=env, check=True,
                          capture_output=True, text=True).stdout


def make_series(solo: str, out: str, base: str = BASE) -> List[str]:
    files = new_files(solo)
    with tempfile.TemporaryDirectory() as tmp:
        work = os.path.join(tmp, "solo-learn")
        _git(tmp, "clone", "--quiet", "--no-checkout", os.path.abspath(solo), work)
        _git(work, "checkout", "--quiet", "-B", "upstream-series", base)
        for subject, body, prefixes, edits in STEPS:
            for path in _paths(prefixes, files) if prefixes else []:
                target = os.path.join(work, path)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "w") as f:
                    f.write(files[path])
            for edit in edits:
                edit(work)
            _git(work, "add", "-A")
            _git(work, "commit", "--quiet", "-m", f"{subject}\n\n{body}\n")
        os.makedirs(out, exist_ok=True)
        for old in os.listdir(out):
            if old.endswith(".patch"):
                os.remove(os.path.join(out, old))
        names = _git(work, "format-patch", "--quiet", "--zero-commit", "--full-index", "--no-signature",
                     "-o", os.path.abspath(out), f"{base}..HEAD")
    return [os.path.basename(line) for line in names.split()] or sorted(os.listdir(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--solo", required=True, help="a git checkout of solo-learn")
    parser.add_argument("--out", default=os.path.join(REPO, "upstream", "solo-learn"))
    parser.add_argument("--base", default=BASE, help="the commit the series applies to")
    args = parser.parse_args()
    if not os.path.isdir(os.path.join(args.solo, ".git")):
        sys.exit(f"--solo {args.solo}: not a git checkout of solo-learn")
    for name in make_series(args.solo, args.out, args.base):
        print(os.path.join(args.out, name))


if __name__ == "__main__":
    main()
