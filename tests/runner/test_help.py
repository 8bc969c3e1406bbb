"""``losslab train --help`` and the option listings of the checks, against Hydra's own."""

from __future__ import annotations

import inspect
import io
import os
import subprocess
import sys
from contextlib import redirect_stderr

import pytest
from omegaconf import OmegaConf

from losslab.runner import help as train_help
from losslab.runner import preflight
from tests.conftest import run_cli

# Hydra's unchanged --help: a Hydra application of the same config tree.
HYDRA_HELP = (
    "import sys\n"
    "import hydra\n"
    "sys.argv = ['losslab train', *sys.argv[1:]]\n"
    "app = hydra.main(version_base='1.3', config_path='pkg://losslab.conf', config_name='train')\n"
    "app(lambda cfg: None)()\n"
)


def hydra_own(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-c", HYDRA_HELP, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def hydra_group_options(loader, group: str) -> list[str]:
    """What the checks listed through Hydra's config loader: options, then sub/option."""
    options = list(loader.get_group_options(group))
    for sub in sorted(loader.list_groups(group)):
        options += [f"{sub}/{o}" for o in hydra_group_options(loader, f"{group}/{sub}")]
    return options


def test_group_listing_is_byte_identical_to_hydras():
    only_groups = "hydra.help.template='$APP_CONFIG_GROUPS'"
    hydra = hydra_own(only_groups, "--help")
    assert hydra.returncode == 0, hydra.stderr[-2000:]
    assert "loss: " in hydra.stdout and "noise/ldr: " in hydra.stdout
    assert preflight.format_app_groups(preflight.config_tree()) + "\n" == hydra.stdout
    ours = run_cli("train", only_groups, "--help")
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == hydra.stdout


@pytest.mark.parametrize(
    "args",
    [[], ["loss=gce", "model.width=7"], ["--resolve"], ["hydra/help=default"]],
    ids=["losslab", "overrides", "resolve", "hydra-template"],
)
def test_train_help_is_hydras_own_text(args):
    hydra = hydra_own(*args, "--help")
    assert hydra.returncode == 0, hydra.stderr[-2000:]
    ours = run_cli("train", *args, "--help")
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == hydra.stdout
    assert "loss: agce, " in ours.stdout and "epochs: 30" in ours.stdout


def test_every_option_hydra_lists_is_the_packaged_listing():
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    tree = preflight.config_tree()
    with initialize_config_module(config_module=preflight.CONFIG_MODULE, version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        groups = sorted(loader.list_groups(""))
        assert groups == preflight.top_groups(tree)
        for group in groups:
            if group != "hydra":
                assert preflight.group_options(tree, group) == hydra_group_options(loader, group)


def test_help_lists_no_group_through_hydras_config_loader(monkeypatch, capsys):
    """Hydra's loader copies its whole config repository for each group it lists."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    from losslab.runner.app import launch

    def refuse(*args, **kwargs):
        raise AssertionError("listed through Hydra's config loader")

    monkeypatch.setattr(ConfigLoaderImpl, "get_group_options", refuse)
    monkeypatch.setattr(ConfigLoaderImpl, "list_groups", refuse)
    assert launch(["--help"]) == 0
    assert "loss: " in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["--hydra-help"],
        ["--info"],
        ["--version"],
        ["--help", "--version"],
        ["--help", "--config-dir", "conf"],
        ["--help", "--config-name", "mine"],
        ["--help", "-cp", "conf"],
        ["--help", "--experimental-rerun", "x.pickle"],
        ["--help", "--nope"],
        ["--help", "hydra.help.template='$FLAGS_HELP'"],
        ["--help", "hydra.help.template='$HYDRA_CONFIG_GROUPS'"],
        ["--help", "loss=nope"],
        ["--help", "hydra.verbose=true"],
        ["loss=ce"],
    ],
)
def test_everything_else_goes_to_hydra(argv):
    assert train_help.help_text(argv) is None


def test_args_parser_reads_a_command_line_as_hydras():
    from hydra._internal.utils import get_args_parser

    for argv in (
        ["loss=ce", "-m", "seed=0,1"],
        ["-mc", "job", "--resolve", "-p", "trainer"],
        ["--cfg", "nope"],
        ["-i"],
        ["--info", "plugins", "x=1"],
        ["--he"],
        ["--h"],
        ["-cn", "x", "-cd", "y", "-cp", "z", "-sc", "-r"],
        ["--nope"],
    ):
        results = []
        for parser in (get_args_parser(), preflight.args_parser()):
            err = io.StringIO()
            with redirect_stderr(err):
                try:
                    parsed = dict(vars(parser.parse_args(argv)))
                except SystemExit as exc:
                    parsed = {"exit": exc.code}
            parsed.pop("version", None)
            results.append((parsed, err.getvalue()))
        assert results[0] == results[1], argv


def test_mandatory_value_is_a_key():
    cfg = OmegaConf.create({"a": "???", "b": {"c": 1, "d": "???"}, "e": "${b.c}"})

    def no_options(name):
        return []

    for key in ("a", "b.c", "b.d", "e"):
        assert preflight._missing_key(cfg, key, no_options) is None
    assert "'a' is a value" in preflight._missing_key(cfg, "a.x", no_options)
    assert "'e' is a value" in preflight._missing_key(cfg, "e.x", no_options)
    message = preflight._missing_key(cfg, "b.x", no_options)
    assert message == "unknown config key 'b.x'. Valid keys under 'b': c, d"


def test_preflight_uses_nothing_private_of_hydra():
    source = inspect.getsource(preflight) + inspect.getsource(train_help)
    assert "_internal" not in source and "_get_node" not in source
