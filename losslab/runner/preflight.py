"""Check the command line of ``losslab train`` before Hydra runs anything.

Hydra already reports an unknown config *option* (``loss=nope``) with the list
of options, but an unknown *key* (``trainer.epochz=3``) only with the key. This
check reports both kinds in one message that names the bad value and lists
the valid choices, and it checks every value of a sweep
(``-m loss=ce,nope``) before the first job starts.

Options are listed from the config tree shipped in the package (a group is a
folder, an option a ``*.yaml`` file in it), as Hydra lists them; only a
launcher or sweeper, which a Hydra plugin may provide, is looked up through
Hydra's config loader.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.resources
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

CONFIG_MODULE = "losslab.conf"
CONFIG_NAME = "train"

#: Hydra plugins a launcher or sweeper option comes from, for the install hint.
PLUGINS = {
    "optuna": "hydra-optuna-sweeper (pip install 'losslab[tune]')",
    "submitit_slurm": "hydra-submitit-launcher",
    "submitit_local": "hydra-submitit-launcher",
    "slurm": "hydra-submitit-launcher",
    "joblib": "hydra-joblib-launcher",
    "local": "hydra-joblib-launcher",
    "ax": "hydra-ax-sweeper",
    "nevergrad": "hydra-nevergrad-sweeper",
    "ray": "hydra-ray-launcher",
    "rq": "hydra-rq-launcher",
}

#: Groups whose options may come from an installed Hydra plugin.
PLUGIN_GROUPS = ("hydra/launcher", "hydra/sweeper")

HELP_FLAGS = ("--help", "-h", "--hydra-help", "--version", "--info", "-i")

#: Names Hydra never lists as a group or an option.
_NOT_LISTED = ("__pycache__", "__init__.py")


class _QuietParser(argparse.ArgumentParser):
    """An argument parser that raises ValueError instead of printing usage and exiting."""

    def error(self, message: str) -> Any:
        raise ValueError(message)


def args_parser(*, quiet: bool = False) -> argparse.ArgumentParser:
    """The flags of a Hydra 1.3 application, in Hydra's order (its usage line is the same).

    ``--version`` is only recorded here: Hydra itself prints its version.
    ``quiet``: a bad command line raises ValueError instead of printing usage.
    """
    parser = (_QuietParser if quiet else argparse.ArgumentParser)(add_help=False)
    add = parser.add_argument
    add("--help", "-h", action="store_true", help="Application's help")
    add("--hydra-help", action="store_true", help="Hydra's help")
    add("--version", action="store_true", help="Show Hydra's version and exit")
    add("overrides", nargs="*", help="Any key=value arguments to override config values")
    add("--cfg", "-c", choices=["job", "hydra", "all"], help="Show config instead of running")
    add("--resolve", action="store_true", help="Resolve interpolations with --cfg or --help")
    add("--package", "-p", help="Config package to show")
    add("--run", "-r", action="store_true", help="Run a job")
    add("--multirun", "-m", action="store_true", help="Run multiple jobs")
    add("--shell-completion", "-sc", action="store_true", help="Shell completion")
    add("--config-path", "-cp", help="Overrides the config_path of the application")
    add("--config-name", "-cn", help="Overrides the config_name of the application")
    add("--config-dir", "-cd", help="Adds an additional config dir to the config search path")
    add("--experimental-rerun", help="Rerun a job from a previous config pickle")
    info = ["all", "config", "defaults", "defaults-tree", "plugins", "searchpath"]
    add("--info", "-i", const="all", nargs="?", action="store", choices=info, help="Hydra info")
    return parser


def default_tree(args: argparse.Namespace) -> bool:
    """Whether the command line composes losslab's own config tree (not a user's)."""
    return args.config_name in (None, CONFIG_NAME) and not args.config_path and not args.config_dir


def config_tree() -> Traversable:
    """The config tree shipped in the package."""
    return importlib.resources.files(CONFIG_MODULE)


def _contents(tree: Traversable, group: str) -> tuple[list[str], list[str]]:
    """The options (``*.yaml`` stems) and sub-groups (folders) of ``group``, sorted."""
    folder = tree
    for part in group.split("/") if group else ():
        folder = folder.joinpath(part)
    if not folder.is_dir():
        return [], []
    options: set[str] = set()
    subs: set[str] = set()
    for entry in folder.iterdir():
        if entry.name in _NOT_LISTED:
            continue
        if entry.is_dir():
            subs.add(entry.name)
        elif entry.name.endswith(".yaml"):
            options.add(entry.name[: -len(".yaml")])
    return sorted(options), sorted(subs)


def top_groups(tree: Traversable) -> list[str]:
    """The top-level config groups (folders) of the tree, ``hydra`` included."""
    return _contents(tree, "")[1]


def group_options(tree: Traversable, group: str) -> list[str]:
    """Options of ``group``, with those in its sub-folders as ``sub/option`` (noise=ldr/sym30)."""
    options, subs = _contents(tree, group)
    for sub in subs:
        options += [f"{sub}/{o}" for o in group_options(tree, f"{group}/{sub}")]
    return options


def app_groups(tree: Traversable, parent: str = "") -> list[str]:
    """Every group that has options (``noise``, ``noise/ldr``), as Hydra finds them, but Hydra's."""
    groups: list[str] = []
    for sub in _contents(tree, parent)[1]:
        name = f"{parent}/{sub}" if parent else sub
        if name == "hydra":
            continue
        options, subs = _contents(tree, name)
        if options:
            groups.append(name)
        if subs:
            groups += app_groups(tree, name)
    return groups


def format_app_groups(tree: Traversable) -> str:
    """The ``$APP_CONFIG_GROUPS`` of a help template: one ``group: a, b, c`` line per group."""
    lines = (f"{g}: {', '.join(_contents(tree, g)[0])}\n" for g in sorted(app_groups(tree)))
    return "".join(lines)


def _parse(argv: list[str]) -> tuple[Any, list[Any]] | str:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        args = args_parser().parse_args(argv)
    except SystemExit:
        return "invalid command line (see losslab train --help)"
    try:
        return args, OverridesParser.create().parse_overrides(args.overrides)
    except OverrideParseException as exc:
        return str(exc)


def _values(override: Any) -> list[Any] | None:
    """The concrete values an override selects; None for a glob (resolved by Hydra)."""
    from hydra.core.override_parser.types import ChoiceSweep, Glob

    value = override.value()
    if isinstance(value, Glob):
        return None
    if isinstance(value, ChoiceSweep):
        return list(value.list)
    return [value]


def _option_names(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _missing_key(cfg: DictConfig, key: str, options_of: Callable[[str], list[str]]) -> str | None:
    """Why ``key`` does not name a config value, or None when it does.

    ``options_of(name)`` lists the options of a config group (none for a name
    that is not one), for the hint when the key is one; it is called only for a
    missing key. A mandatory ``???`` value is a key (it has no value yet).
    """
    node: Any = OmegaConf.to_container(cfg, resolve=False)
    path: list[str] = []
    for part in key.split("."):
        if not isinstance(node, dict):
            return f"'{'.'.join(path)}' is a value, not a config section, so '{key}' is not a key"
        if part not in node:
            where = f"under '{'.'.join(path)}'" if path else "at the top level"
            valid = ", ".join(sorted(str(k) for k in node)) or "(none)"
            message = f"unknown config key '{key}'. Valid keys {where}: {valid}"
            group = ".".join(path)
            if part in options_of(group):
                message += f". '{part}' is an option of {group}: select it with '{group}=[{part}]'"
            return message
        node = node[part]
        path.append(part)
    return None


def _plugin_problem(loader: Any, group: str, option: str) -> list[str]:
    """A launcher/sweeper option that is not installed, with the plugin that provides it."""
    try:
        options = loader.get_group_options(group)
    except Exception:
        return []
    if option in options:
        return []
    hint = f"; it comes with {PLUGINS[option]}" if option in PLUGINS else ""
    return [f"unknown {group} '{option}'{hint}. Valid options for {group}: {', '.join(options)}"]


@dataclass
class _Plan:
    """What the overrides of a command line ask for, sorted for the checks."""

    problems: list[str] = field(default_factory=list)
    selections: list[str] = field(default_factory=list)  # group=option, composed for the keys
    swept: set[str] = field(default_factory=set)  # groups whose option varies (or a glob)
    keys: list[str] = field(default_factory=list)  # config keys set, to be checked


def _select(plan: _Plan, override: Any, tree: Traversable) -> None:
    """Check the option(s) a group override selects."""
    name = override.key_or_group
    values = _values(override)
    if values is None:
        plan.swept.add(name)
        return
    options = group_options(tree, name)
    for value in values:
        bad = [v for v in _option_names(value) if v not in options and value is not None]
        for v in bad:
            plan.problems.append(
                f"unknown {name} '{v}'. Valid options for {name}: {', '.join(options)}"
            )
    if len(values) > 1:
        plan.swept.add(name)
    elif not plan.problems:
        plan.selections.append(override.input_line)


def _plan(overrides: list[Any], tree: Traversable, loader: Callable[[], Any]) -> _Plan:
    """Sort the overrides; check group options and plugins (``loader()``: Hydra's)."""
    groups = set(top_groups(tree))
    plan = _Plan()
    for o in overrides:
        name = o.key_or_group
        if name in PLUGIN_GROUPS and isinstance(o.value(), str):
            plan.problems.extend(_plugin_problem(loader(), name, o.value()))
        elif o.is_hydra_override() or name.startswith("hydra") or o.is_delete():
            continue
        elif name in groups and o.package is None:
            _select(plan, o, tree)
        elif not (o.is_add() or o.is_force_add()):
            plan.keys.append(name)
    return plan


def _key_problems(plan: _Plan, tree: Traversable) -> list[str]:
    """The keys of ``plan`` that name no value of the config its selections compose."""
    from hydra import compose

    try:
        cfg = compose(config_name=CONFIG_NAME, overrides=plan.selections)
    except Exception:
        return []  # let Hydra report what it cannot compose
    groups = set(top_groups(tree))

    @functools.cache
    def options_of(name: str) -> list[str]:  # listed for a missing key only, once
        return group_options(tree, name) if name in groups else []

    problems = []
    for key in plan.keys:
        if key.split(".")[0] in plan.swept:
            continue  # depends on which swept option is composed
        problem = _missing_key(cfg, key, options_of)
        if problem:
            problems.append(problem)
    return problems


def check_argv(argv: list[str]) -> str | None:
    """Return one message describing every bad option or key in ``argv``, or None."""
    if any(flag in argv for flag in HELP_FLAGS):
        return None
    parsed = _parse(argv)
    if isinstance(parsed, str):
        return parsed
    args, overrides = parsed
    if not default_tree(args):
        return None  # a user's own config tree: leave the checks to Hydra

    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    with contextlib.ExitStack() as stack:

        @functools.cache
        def loader() -> Any:  # Hydra, started once and only when a check needs it
            stack.enter_context(
                initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3")
            )
            return GlobalHydra.instance().config_loader()

        tree = config_tree()
        plan = _plan(overrides, tree, loader)
        if plan.problems or not plan.keys:
            return "\n".join(plan.problems) or None
        loader()
        return "\n".join(_key_problems(plan, tree)) or None
