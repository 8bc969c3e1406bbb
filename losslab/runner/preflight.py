"""Check the command line of ``losslab train`` before Hydra runs anything.

Hydra already reports an unknown config *option* (``loss=nope``) with the list
of options, but an unknown *key* (``trainer.epochz=3``) only with the key. This
check reports both kinds in one message that names the bad value and lists
the valid choices, and it checks every value of a sweep
(``-m loss=ce,nope``) before the first job starts.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

from omegaconf import DictConfig, OmegaConf

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


HELP_FLAGS = ("--help", "-h", "--hydra-help", "--version", "--info", "-i")


@contextlib.contextmanager
def one_repository_copy() -> Iterator[None]:
    """Within the block, Hydra lists config groups from one copy of its config repository.

    Hydra's ``ConfigLoaderImpl.get_group_options`` deep-copies the whole repository
    (every config source and stored config) at each call, about 35 ms here; its help
    lists every group and sub-group, over a hundred calls, most of ``losslab train
    --help``. Nothing changes the repository while a help text or a check of the
    command line is made, so the copy of the first call serves the others with the
    same config name and overrides. Where Hydra's internals differ from those of
    the versions this was written for, the block runs Hydra unchanged.
    """
    try:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra.core.object_type import ObjectType
    except ImportError:
        ConfigLoaderImpl = None
    if not hasattr(ConfigLoaderImpl, "_parse_overrides_and_create_caching_repo"):
        yield
        return
    original = ConfigLoaderImpl.get_group_options
    copies: dict[tuple, Any] = {}

    def get_group_options(
        self: Any,
        group_name: str,
        results_filter: Any = ObjectType.CONFIG,
        config_name: str | None = None,
        overrides: list[str] | None = None,
    ) -> list[str]:
        key = (id(self), config_name, tuple(overrides or ()))
        if key not in copies:
            _, copies[key] = self._parse_overrides_and_create_caching_repo(
                config_name, list(overrides or ())
            )
        return copies[key].get_group_options(group_name, results_filter)

    ConfigLoaderImpl.get_group_options = get_group_options
    try:
        yield
    finally:
        ConfigLoaderImpl.get_group_options = original


def _parse(argv: list[str]) -> tuple[Any, list[Any]] | str:
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        args = get_args_parser().parse_args(argv)
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
    missing key.
    """
    node: Any = cfg
    path: list[str] = []
    for part in key.split("."):
        if not OmegaConf.is_dict(node):
            return f"'{'.'.join(path)}' is a value, not a config section, so '{key}' is not a key"
        # keys(), not `in node`: OmegaConf's `in` is False for a mandatory ??? value
        if part not in node.keys():  # noqa: SIM118
            where = f"under '{'.'.join(path)}'" if path else "at the top level"
            valid = ", ".join(sorted(str(k) for k in node)) or "(none)"
            message = f"unknown config key '{key}'. Valid keys {where}: {valid}"
            group = ".".join(path)
            if part in options_of(group):
                message += f". '{part}' is an option of {group}: select it with '{group}=[{part}]'"
            return message
        node = node._get_node(part)
        path.append(part)
    return None


def group_options(loader: Any, group: str) -> list[str]:
    """Options of ``group``, with those in its sub-folders as ``sub/option`` (noise=ldr/sym30)."""
    options = list(loader.get_group_options(group))
    for sub in sorted(loader.list_groups(group)):
        options += [f"{sub}/{o}" for o in group_options(loader, f"{group}/{sub}")]
    return options


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


def check_argv(argv: list[str]) -> str | None:
    """Return one message describing every bad option or key in ``argv``, or None."""
    if any(flag in argv for flag in HELP_FLAGS):
        return None
    parsed = _parse(argv)
    if isinstance(parsed, str):
        return parsed
    args, overrides = parsed
    if args.config_name not in (None, CONFIG_NAME) or args.config_path or args.config_dir:
        return None  # a user's own config tree: leave the checks to Hydra

    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    problems: list[str] = []
    with (
        initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"),
        one_repository_copy(),
    ):
        loader = GlobalHydra.instance().config_loader()
        groups = set(loader.list_groups(""))
        selections: list[str] = []
        swept: set[str] = set()
        keys: list[str] = []
        for o in overrides:
            name = o.key_or_group
            if name in ("hydra/launcher", "hydra/sweeper") and isinstance(o.value(), str):
                problems.extend(_plugin_problem(loader, name, o.value()))
                continue
            if o.is_hydra_override() or name.startswith("hydra") or o.is_delete():
                continue
            if name in groups and o.package is None:
                values = _values(o)
                if values is None:
                    swept.add(name)
                    continue
                options = group_options(loader, name)
                for value in values:
                    bad = [
                        v for v in _option_names(value) if v not in options and value is not None
                    ]
                    for v in bad:
                        problems.append(
                            f"unknown {name} '{v}'. Valid options for {name}: {', '.join(options)}"
                        )
                if len(values) > 1:
                    swept.add(name)
                elif not problems:
                    selections.append(o.input_line)
            elif not (o.is_add() or o.is_force_add()):
                keys.append(name)
        if problems or not keys:
            return "\n".join(problems) or None
        try:
            cfg = compose(config_name=CONFIG_NAME, overrides=selections)
        except Exception:
            return None  # let Hydra report what it cannot compose

        @functools.cache
        def options_of(name: str) -> list[str]:  # listed for a missing key only, once
            return group_options(loader, name) if name in groups else []

        for key in keys:
            if key.split(".")[0] in swept:
                continue  # depends on which swept option is composed
            problem = _missing_key(cfg, key, options_of)
            if problem:
                problems.append(problem)
    return "\n".join(problems) or None
