"""Every command a user may copy from README.md and docs/ (a line of a code block, or inline
code, that starts with ``solo-plugins`` or runs solo-learn's ``main_*.py``), composed with its
Hydra overrides against the shipped configs, as the command would compose it: a renamed key,
a missing config or a grammar slip fails here. They are composed, not run (most train for
hours or need a GPU, a cluster or the network); the quick ones also run elsewhere in the
suite (the demo, the digits sweep, the pretrain and linear commands on digits)."""

import glob
import os
import re
import shlex

import pytest

pytest.importorskip("solo.methods")

from solo_plugins.commands._hydra import compose, with_shipped_config_path  # noqa: E402
from tests.conftest import REPO  # noqa: E402

SUBDIRS = {"pretrain": "pretrain", "linear": "linear", "knn": "knn", "metrics": "knn", "sweep": "sweep",
           "identifiability": "sweep"}


def _documents():
    return [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "**", "*.md"),
                                                                recursive=True))


def _commands():
    found = []
    for path in _documents():
        text = open(path).read()
        lines = []
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
            lines += block.replace("\\\n", " ").splitlines()
        # inline code that is a whole command (it names a config), not prose naming a subcommand
        inline = re.findall(r"`((?:solo-plugins|python3?) [^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
        lines += [" ".join(c.split()) for c in inline if "--config-name" in c or "--config-path" in c]
        for line in [part for line in lines for part in line.split("&&")]:
            line = line.strip().removeprefix("$ ")
            if "<subcommand>" in line or "|" in line.split("#")[0]:  # a synopsis, not a command
                continue
            if line.startswith("solo-plugins ") or re.match(r"python3? \S*main_(pretrain|linear)\.py", line):
                found.append((os.path.relpath(path, REPO), re.sub(r"\s+#.*$", "", line)))
    return found


COMMANDS = _commands()


def _overrides(args):
    """The overrides compose() takes: placeholders filled, a multirun's first value of each
    sweep, Hydra's own settings (hydra/..., hydra.*) parsed by Hydra's grammar and left out."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser, out = OverridesParser.create(), []
    for a in args:
        if a.startswith("[") and a.endswith("]") and "=..." in a:  # an optional argument: [out_dir=...]
            continue
        if a in ("-m", "--multirun"):
            continue
        a = re.sub(r"<[^>]+>", "x", a).replace("'...'", "'x'")
        override = parser.parse_override(a)  # a grammar slip fails here
        if a.startswith("hydra"):
            continue
        if override.is_sweep_override():
            a = f"{a.split('=', 1)[0]}={next(iter(override.sweep_string_iterator()))}"
        out.append(a)
    return out


def _split_config(args):
    """(config dir, config name, the other arguments) from --config-path/--config-name."""
    path = name = None
    rest = []
    it = iter(args)
    for a in it:
        if a in ("--config-path", "-cp"):
            path = next(it)
        elif a in ("--config-name", "-cn"):
            name = next(it)
        else:
            rest.append(a)
    if path is not None:
        path = path.replace("/path/to/solo-plugins/", "")
        path = path if os.path.isabs(path) else os.path.join(REPO, path)
    return path, name, rest


def test_the_docs_show_the_commands_a_user_runs():
    subcommands = {shlex.split(c)[1] for _, c in COMMANDS if c.startswith("solo-plugins")}
    assert {"pretrain", "linear", "knn", "metrics", "sweep", "identifiability", "run", "export", "demo"} <= subcommands
    assert len(COMMANDS) >= 30


@pytest.mark.parametrize("where,command", COMMANDS, ids=[f"{w}:{c[:60]}" for w, c in COMMANDS])
def test_a_documented_command_composes(where, command):
    argv = shlex.split(command)
    if argv[0] == "solo-plugins":
        sub, args = argv[1], argv[2:]
    else:  # python main_pretrain.py / main_linear.py of solo-learn, with this package's configs
        sub, args = "run", argv[1:]
    if sub in ("--help", "--version") or "--help" in args:
        return
    if sub == "export":
        from solo_plugins.data.export import build_parser

        build_parser().parse_args(args)
        return
    if sub == "demo":  # the digits sweep with the demo's overrides
        args = ["--config-name", "digits.yaml", *args]
        sub = "sweep"
    if sub == "run":  # solo-learn's script: its config from --config-path/--config-name
        args = [a for a in args if not a.endswith(".py")]
        path, name, rest = _split_config(args)
    else:
        path, name, rest = _split_config(with_shipped_config_path(args, SUBDIRS[sub]))
    assert path and name, command
    cfg = compose(path, name.replace("<dataset>", "cifar10"), _overrides(rest))
    assert cfg is not None
    for key in ("pretrain_overrides", "linear_overrides"):
        if key in cfg and cfg[key]:
            assert all(isinstance(o, str) and "=" in o for o in cfg[key]), (key, cfg[key])


def _inline_overrides():
    found = []
    for path in _documents():
        text = re.sub(r"```.*?```", "", open(path).read(), flags=re.S)
        for span in re.findall(r"`([^`\s]+)`", text):
            if re.match(r"^\+?[A-Za-z_][\w.]*=\S", span) and not span.startswith(("http", "PYTHON")):
                found.append((os.path.relpath(path, REPO), span))
    return found


INLINE = _inline_overrides()


@pytest.mark.parametrize("where,override", INLINE, ids=[f"{w}:{o[:50]}" for w, o in INLINE])
def test_an_override_shown_in_the_text_parses(where, override):
    """``pretrain_overrides=[devices=4,strategy=ddp]`` (docs/cluster.md until 0.4) is refused by
    Hydra's grammar; the quoted form parses."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    OverridesParser.create().parse_override(re.sub(r"<[^>]+>", "x", override))
