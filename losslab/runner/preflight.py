"""Check the command line of ``losslab train`` before Hydra runs anything.

Every way of setting a value goes through one check: ``key=``, ``+key=``,
``++key=``, the jobs of a sweep and the values an experiment preset brings. An
unknown option or key is reported in one message that names it and lists the
valid choices (and, for a key of an option that is not the chosen one, which
options have it); a bad value (``trainer.epochs=-1``) is reported before torch
is imported and before any job, so that a refused command leaves nothing on
disk. ``+key`` adds a key only to a section with a ``_target_`` that takes it.

A sweep's jobs are expanded as Hydra's basic sweeper expands them. A key that
exists for some of the swept options only (``-m noise=none,symmetric
noise.rate=0.4``) is kept where it exists: :func:`check` returns the jobs, each
with its own overrides, for the job list sweeper to launch.

Options are listed from the config tree shipped in the package (a group is a
folder, an option a ``*.yaml`` file in it) and a ``--config-dir`` beside it, as
Hydra lists them; only a launcher or sweeper, which a Hydra plugin may provide,
is looked up through Hydra's config loader.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.resources
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
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


def override_key(override: str) -> str:
    """The key an override sets: ``loss.q`` of ``+loss.q=0.5``."""
    return override.split("=", 1)[0].lstrip("+~")


def default_tree(args: argparse.Namespace) -> bool:
    """Whether the command line composes losslab's own config tree (not a user's)."""
    return args.config_name in (None, CONFIG_NAME) and not args.config_path and not args.config_dir


def config_tree() -> Traversable:
    """The config tree shipped in the package."""
    return importlib.resources.files(CONFIG_MODULE)


class Trees:
    """Config trees read as one (the packaged tree and a ``--config-dir``): a folder
    lists the entries of all of them; a file is the first tree's that has it."""

    def __init__(self, *roots: Any) -> None:
        self.roots = roots
        self.name = roots[0].name

    def joinpath(self, *parts: str) -> Trees:
        return Trees(*(r.joinpath(*parts) for r in self.roots))

    def is_dir(self) -> bool:
        return any(r.is_dir() for r in self.roots)

    def iterdir(self) -> Iterator[Any]:
        names: dict[str, list[Any]] = {}
        for root in self.roots:
            if root.is_dir():
                for entry in root.iterdir():
                    names.setdefault(entry.name, []).append(entry)
        for entries in names.values():
            folders = [e for e in entries if e.is_dir()]
            yield Trees(*folders) if folders else entries[0]

    def read_text(self) -> str:
        for root in self.roots:
            if root.is_file():
                return root.read_text()
        raise FileNotFoundError(self.name)


def _tree_of(args: argparse.Namespace) -> tuple[Any, tuple[str, ...]] | None:
    """The config tree the command line composes, and the overrides that add its
    ``--config-dir`` to Hydra's search path; None for a tree of the user's own
    (another primary config or config path): Hydra then checks it alone."""
    if args.config_name not in (None, CONFIG_NAME) or args.config_path:
        return None
    if not args.config_dir:
        return config_tree(), ()
    folder = Path(args.config_dir).expanduser().resolve()
    return Trees(config_tree(), folder), (f"hydra.searchpath=[file://{folder}]",)


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


def _option_problems(override: Any, tree: Traversable) -> list[str]:
    """The options a group override chooses that the group does not have."""
    name = override.key_or_group
    values = _values(override)
    options = group_options(tree, name) if values is not None else []
    return [
        f"unknown {name} '{v}'. Valid options for {name}: {', '.join(options)}"
        for value in values or ()
        if value is not None
        for v in _option_names(value)
        if v not in options
    ]


def _is_group(override: Any, groups: set[str]) -> bool:
    """Whether ``override`` chooses an option of a config group (``loss=gce``, ``+experiment=x``)."""
    return override.key_or_group in groups and override.package is None


def _skipped(override: Any) -> bool:
    """Hydra's own settings and deletions: not checked here."""
    name = override.key_or_group
    return override.is_hydra_override() or name.startswith("hydra") or override.is_delete()


def _problems(overrides: list[Any], tree: Traversable, loader: Callable[[], Any]) -> list[str]:
    """Unknown options of the groups, and launchers or sweepers that are not installed
    (``loader()``: Hydra's config loader, which lists a plugin's options)."""
    groups = set(top_groups(tree))
    problems: list[str] = []
    for o in overrides:
        name = o.key_or_group
        if name in PLUGIN_GROUPS and isinstance(o.value(), str):
            problems.extend(_plugin_problem(loader(), name, o.value()))
        elif not _skipped(o) and _is_group(o, groups):
            problems.extend(_option_problems(o, tree))
    return problems


@dataclass
class Checked:
    """The outcome of :func:`check`.

    ``problem``: one message naming every bad option, key or value (None when the
    command line is good). ``jobs``: a sweep whose key exists for some of its
    options only (``-m noise=none,symmetric noise.rate=0.4``), written out as the
    list of its jobs, each with the key where it exists; None when Hydra's own
    sweeper runs the command line as it is.
    """

    problem: str | None = None
    jobs: list[list[str]] | None = None


#: How an override sets a key: ``key=`` (set), ``+key=`` (add), ``++key=`` (force).
def _mode(override: Any) -> str:
    return "add" if override.is_add() else "force" if override.is_force_add() else "set"


@dataclass
class _Job:
    """One job of the command line: the group options it chooses and the keys it sets."""

    overrides: list[Any]
    selections: dict[str, str]  # group -> its override (``loss=gce``)
    keys: list[Any]


def _split_job(overrides: list[Any], groups: set[str]) -> _Job:
    checked = [o for o in overrides if not _skipped(o)]
    selections = {o.key_or_group: o.input_line for o in checked if _is_group(o, groups)}
    keys = [o for o in checked if not _is_group(o, groups)]
    return _Job(overrides, selections, keys)


def _node(cfg: Any, key: str) -> tuple[bool, Any]:
    """Whether ``key`` names a value of the (plain) config ``cfg``, and that value."""
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _raw_option(tree: Traversable, group: str, option: str) -> dict | None:
    """Option ``option`` of ``group`` read from its file, as the group's section of the
    config; None when the file reaches outside its group (another package, a defaults
    list that chooses other groups) and only Hydra can say what it composes.

    A defaults list that extends a sibling (``- /noise/symmetric@_here_``) is followed.
    """
    path = tree.joinpath(*group.split("/"), *f"{option}.yaml".split("/"))
    try:
        text = path.read_text()
        loaded = OmegaConf.to_container(OmegaConf.create(text), resolve=False)
    except Exception:
        return None
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("# @package") and line.split()[-1] not in (group, "_group_"):
            return None
    if not isinstance(loaded, dict):
        return None
    merged: dict = {}
    for entry in loaded.pop("defaults", None) or []:
        if entry == "_self_":
            continue
        prefix = f"/{group}/"
        if not (isinstance(entry, str) and entry.startswith(prefix) and entry.endswith("@_here_")):
            return None
        parent = _raw_option(tree, group, entry[len(prefix) : -len("@_here_")])
        if parent is None:
            return None
        merged = OmegaConf.to_container(OmegaConf.merge(merged, parent), resolve=False)
    return OmegaConf.to_container(OmegaConf.merge(merged, loaded), resolve=False)


def _option_has_key(tree: Traversable, group: str, option: str, key: str) -> bool:
    """Whether option ``option`` of ``group`` holds ``key`` (relative to the group)."""
    raw = _raw_option(tree, group, option)
    return raw is not None and _node(raw, key)[0]


def _choose_first(tree: Traversable, cfg: dict, override: Any) -> str | None:
    """The message for a key of a group's option that is not the one chosen: which
    options have it, and how to choose one (``noise=symmetric noise.rate=0.4``)."""
    key = override.key_or_group
    group, _, rest = key.partition(".")
    if not rest or group not in set(top_groups(tree)):
        return None
    having = [o for o in group_options(tree, group) if _option_has_key(tree, group, o, rest)]
    if not having:
        return None
    chosen = (cfg.get("_choices") or {}).get(group)
    node = _node(cfg, group)[1]
    keys = ", ".join(sorted(str(k) for k in node)) if isinstance(node, dict) else "(none)"
    plain = [o for o in having if "/" not in o]
    presets = sorted({o.split("/")[0] + "/" for o in having if "/" in o})
    shown = ", ".join(plain) + (f" and the presets under {', '.join(presets)}" if presets else "")
    example = f"{group}={(plain or having)[0]} {key}={override.get_value_element_as_str()}"
    return (
        f"unknown config key '{key}': the chosen {group} '{chosen}' has the keys {keys}. "
        f"'{rest}' is a key of {group} {shown}: choose one first, e.g. '{example}'"
    )


def _key_message(tree: Traversable, cfg: dict, override: Any) -> str | None:
    """Why the key ``override`` sets is not one of ``cfg``; None when it may be set."""
    key = override.key_or_group
    mode = _mode(override)
    exists, _ = _node(cfg, key)
    if exists:
        if mode == "add":
            return (
                f"'{override.input_line}': '{key}' is already in the config; "
                f"set it with '{key}={override.get_value_element_as_str()}'"
            )
        return None
    parent_key = key.rpartition(".")[0]
    parent_exists, parent = _node(cfg, parent_key) if parent_key else (True, cfg)
    if mode != "set" and parent_exists and isinstance(parent, dict) and "_target_" in parent:
        return None  # a new argument of a _target_: checked against its signature later
    groups = set(top_groups(tree))

    @functools.cache
    def options_of(name: str) -> list[str]:  # listed for a missing key only
        return group_options(tree, name) if name in groups else []

    first = _choose_first(tree, cfg, override)
    if first:
        return first
    plain = {k: v for k, v in cfg.items() if k != "_choices"}
    message = _missing_key(OmegaConf.create(plain), key, options_of) or f"unknown key '{key}'"
    if mode != "set":
        sign = "+" if mode == "add" else "++"
        message += f" ('{sign}' adds a key only to a section whose _target_ takes it)"
    return message


def _target_of(cfg: dict, job: _Job, override: Any) -> str:
    """The ``_target_`` that the key ``override`` adds an argument to: the job's own
    ``section._target_=...`` when it sets one, else the config's."""
    parent_key = override.key_or_group.rpartition(".")[0]
    dotted = f"{parent_key}._target_" if parent_key else "_target_"
    given = [o.value() for o in job.keys if o.key_or_group == dotted]
    return str(given[-1] if given else _node(cfg, dotted)[1])


def _target_problem(target: str, override: Any) -> str | None:
    """A ``+key``/``++key`` that adds an argument to a ``_target_`` it does not take."""
    import inspect

    from hydra.utils import get_object

    name = override.key_or_group.rpartition(".")[2]
    try:
        params = inspect.signature(get_object(target)).parameters
    except Exception:  # an import error is reported when the run builds its parts
        return None
    if name in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    takes = ", ".join(p for p in params if p not in ("self", "args", "kwargs")) or "(none)"
    return f"'{override.input_line}': {target} takes no argument '{name}'. Its arguments: {takes}"


#: Values a job's override may set for the value checks (anything else is left to the run).
_PLAIN = (str, int, float, bool, list, dict, type(None))


def _value_problem(cfg: DictConfig, keys: list[Any]) -> str | None:
    """The first bad value of the job whose composed config is ``cfg`` with ``keys`` set."""
    from omegaconf import open_dict
    from omegaconf.errors import OmegaConfBaseException

    from losslab.runner.settings import ConfigError, validate

    cfg = cfg.copy()
    try:
        with open_dict(cfg):
            for o in keys:
                value = o.value()
                if isinstance(value, _PLAIN):
                    OmegaConf.update(cfg, o.key_or_group, value, merge=True, force_add=True)
        validate(cfg, resolve=False)
        OmegaConf.to_container(cfg, resolve=True)
    except ConfigError as exc:
        return str(exc)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        where = f" at '{key}'" if key else ""
        return f"cannot resolve the config{where}: {(exc.msg or str(exc)).splitlines()[0]}"
    except Exception:  # a resolver only the run has (${hydra:...}): checked by the run
        return None
    return None


def _jobs_of(
    args: argparse.Namespace, overrides: list[Any], base: DictConfig, loader: Callable[[], Any]
) -> tuple[list[list[Any]], bool] | None:
    """The jobs of the command line, each a list of parsed overrides, and whether they
    are all of them (Hydra's basic sweeper: the Cartesian product of the sweeps, the
    preset's ``hydra.sweeper.params`` first). Another sweeper's sweeps are not expanded:
    one job holds the fixed overrides. None when Hydra itself must report the line."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    task = [
        o for o in overrides if not (o.is_hydra_override() or o.key_or_group.startswith("hydra"))
    ]
    sweeps = [o for o in task if o.is_sweep_override()]
    if not args.multirun:
        return None if sweeps else ([task], True)
    sweeper = OmegaConf.select(base, "hydra.sweeper._target_", default="")
    if not str(sweeper).endswith(".BasicSweeper"):
        return [[o for o in task if not o.is_sweep_override()]], False
    params = OmegaConf.select(base, "hydra.sweeper.params")
    params = OmegaConf.to_container(params, resolve=False) if params else {}
    parser = OverridesParser.create(config_loader=loader())
    try:
        lines = [f"{k}={v}" for k, v in params.items()] + [o.input_line for o in task]
        given = parser.parse_overrides(lines)  # again, with the loader that expands a glob
        if any(o.is_sweep_override() and not o.is_discrete_sweep() for o in given):
            return None
        return [parser.parse_overrides(job) for job in _product(given)], True
    except Exception:  # a sweep Hydra cannot expand: its own message says why
        return None


def _product(overrides: list[Any]) -> list[list[str]]:
    """The jobs of Hydra's basic sweeper for ``overrides``: one list of ``key=value``
    per point of the Cartesian product of the sweeps, a key's last override winning."""
    lines: dict[str, list[str]] = {}
    for o in overrides:
        key = o.get_key_element()
        values = (
            o.sweep_string_iterator() if o.is_sweep_override() else [o.get_value_element_as_str()]
        )
        lines[key] = [f"{key}={v}" for v in values]
    return [list(job) for job in itertools.product(*lines.values())]


def _compose(
    selections: tuple[str, ...], searchpath: tuple[str, ...] = ()
) -> tuple[DictConfig, dict] | None:
    """The config ``selections`` compose (without Hydra's node), and the same as plain
    data with Hydra's choices under ``_choices``; None when it does not compose."""
    from hydra import compose

    try:
        cfg = compose(
            config_name=CONFIG_NAME, overrides=[*searchpath, *selections], return_hydra_config=True
        )
    except Exception:
        return None  # let Hydra report what it cannot compose
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices, resolve=False)
    from omegaconf import open_dict

    with open_dict(cfg):
        del cfg["hydra"]
    plain = OmegaConf.to_container(cfg, resolve=False)
    plain["_choices"] = choices
    return cfg, plain


class _Configs:
    """The configs the jobs of a sweep compose, one group at a time.

    Composing every combination of a sweep's options (a preset's 2 data sets x 8
    losses x 9 noise settings) would take a minute; instead the first job's
    options are composed (the base), and each other option of a swept group with
    the base's options for the other groups. A key exists in a job when it exists
    in the base, unless one of the job's own options changes that.
    """

    def __init__(
        self, tree: Traversable, base: dict[str, str], searchpath: tuple[str, ...]
    ) -> None:
        self.tree = tree
        self.base = base
        self.searchpath = searchpath
        self._composed: dict[tuple[str, ...], tuple[DictConfig | None, dict] | None] = {}
        self._messages: dict[tuple[tuple[str, ...], str], str | None] = {}

    def get(self, selections: dict[str, str]) -> tuple[DictConfig | None, dict] | None:
        """The config ``selections`` compose and the same as plain data; an option whose
        file stays in its group is read, not composed (then the config is None)."""
        key = tuple(selections.values())
        if key not in self._composed:
            self._composed[key] = self._local(selections) or _compose(key, self.searchpath)
        return self._composed[key]

    def _local(self, selections: dict[str, str]) -> tuple[None, dict] | None:
        """The base with one option read from its file in place of the base's."""
        changed = [g for g, line in selections.items() if self.base.get(g) != line]
        if len(changed) != 1 or set(selections) != set(self.base):
            return None
        group = changed[0]
        option = selections[group].split("=", 1)[1]
        raw = _raw_option(self.tree, group, option)
        base = self.get(self.base)
        if raw is None or base is None:
            return None
        plain = {**base[1], group: raw, "_choices": {**base[1]["_choices"], group: option}}
        return None, plain

    def message(self, selections: dict[str, str], override: Any) -> str | None:
        """:func:`_key_message` of ``override`` in the config of ``selections``, once."""
        key = (tuple(selections.values()), override.input_line)
        if key not in self._messages:
            composed = self.get(selections)
            assert composed is not None
            self._messages[key] = _key_message(self.tree, composed[1], override)
        return self._messages[key]

    def variants(self, job: _Job) -> list[dict[str, str]]:
        """The base with one of ``job``'s own options in it, for each group it differs in."""
        return [
            {**self.base, group: line}
            for group, line in job.selections.items()
            if self.base.get(group) != line
        ]


def _key_check(
    tree: Traversable, configs: _Configs, job: _Job, override: Any
) -> tuple[str | None, dict[str, str]]:
    """Why ``override`` names no key of ``job``'s config (None when it does), and the
    selections that decided it: the job's option of the key's own group, else one of
    the job's options that changes the answer, else the base."""
    base = configs.get(configs.base)
    assert base is not None
    at_base = configs.message(configs.base, override)
    outcome: tuple[str | None, dict[str, str]] = (at_base, configs.base)
    for selections in configs.variants(job):
        if configs.get(selections) is None:
            continue
        message = configs.message(selections, override)
        (group,) = (g for g, line in selections.items() if configs.base.get(g) != line)
        if group == override.key_or_group.split(".")[0]:
            return message, selections
        if (message is None) != (at_base is None):
            outcome = (message, selections)
    return outcome


def _check_keys(
    tree: Traversable, configs: _Configs, jobs: list[_Job], drop: bool
) -> tuple[list[str], set[tuple[int, str]], dict[tuple[str, str], Any]]:
    """The key problems of ``jobs``, the keys to leave out of some jobs (``drop``: a key
    that exists for some of the jobs only), and the ``+key``s that add a ``_target_``'s
    argument (to be checked against its signature)."""
    missing: dict[str, list[tuple[int, str]]] = {}
    seen: dict[str, int] = {}
    targets: dict[tuple[str, str], Any] = {}  # (target, override line) -> override
    for i, job in enumerate(jobs):
        for o in job.keys:
            name = o.get_key_element()
            seen[name] = seen.get(name, 0) + 1
            message, selections = _key_check(tree, configs, job, o)
            plain = configs.get(selections)[1]  # type: ignore[index]
            if message:
                missing.setdefault(name, []).append((i, message))
            elif _mode(o) != "set" and not _node(plain, o.key_or_group)[0]:
                targets[_target_of(plain, job, o), o.input_line] = o
    problems: list[str] = []
    dropped: set[tuple[int, str]] = set()
    for name, where in missing.items():
        if len(where) == seen[name] or not drop:
            problems.append(where[0][1])
        else:
            dropped |= {(i, name) for i, _ in where}
    return problems, dropped, targets


def _check_values(configs: _Configs, jobs: list[_Job], dropped: set[tuple[int, str]]) -> list[str]:
    """Bad values of the jobs: the first job's, then each other option of a swept group
    and each other value of a swept key, one at a time."""
    first = {o.get_key_element(): o for o in jobs[0].keys}
    units: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[dict[str, str], list[Any]]] = {}
    for i, job in enumerate(jobs):
        own = {o.get_key_element(): o for o in job.keys if (i, o.get_key_element()) not in dropped}
        fixed = [o for name, o in own.items() if first.get(name) is o or _same(first.get(name), o)]
        for selections in configs.variants(job):
            units.setdefault(
                (tuple(selections.values()), tuple(o.input_line for o in fixed)),
                (selections, fixed),
            )
        for name, o in own.items():
            keys = [*(f for f in fixed if f.get_key_element() != name), o]
            base = configs.base
            if not _same(first.get(name), o):
                units.setdefault(
                    (tuple(base.values()), tuple(k.input_line for k in keys)), (base, keys)
                )
        if i == 0:
            units.setdefault(
                (tuple(job.selections.values()), tuple(o.input_line for o in own.values())),
                (job.selections, list(own.values())),
            )
    problems = []
    for selections, keys in units.values():
        composed = configs.get(selections)
        if composed and composed[0] is not None and not any(o.is_sweep_override() for o in keys):
            problem = _value_problem(composed[0], keys)
            if problem:
                problems.append(problem)
    return problems


def _same(a: Any, b: Any) -> bool:
    return a is not None and b is not None and a.input_line == b.input_line


def _check_jobs(
    args: argparse.Namespace,
    overrides: list[Any],
    tree: Traversable,
    searchpath: tuple[str, ...],
    loader: Callable[[], Any],
) -> Checked:
    """Every key of every job named in its job's config, every value checked; a key that
    exists for some options of a sweep only is left out of the other jobs."""
    from hydra import compose

    groups = set(top_groups(tree))
    fixed = [
        o.input_line
        for o in overrides
        if not o.is_sweep_override() and (_is_group(o, groups) or o.key_or_group == "hydra/sweeper")
    ]
    try:
        base = compose(
            config_name=CONFIG_NAME, overrides=[*searchpath, *fixed], return_hydra_config=True
        )
    except Exception:
        return Checked()  # Hydra reports what it cannot compose
    expanded = _jobs_of(args, overrides, base, loader)
    if expanded is None:
        return Checked()
    parsed_jobs, complete = expanded
    jobs = [_split_job(job, groups) for job in parsed_jobs]
    if not complete:  # another sweeper: the keys of its sweeps are checked where they can be
        swept = {
            o.key_or_group for o in overrides if o.is_sweep_override() and _is_group(o, groups)
        }
        jobs[0].keys = [
            o
            for o in overrides
            if not _skipped(o)
            and not _is_group(o, groups)
            and o.key_or_group.split(".")[0] not in swept
        ]
    configs = _Configs(tree, jobs[0].selections, searchpath)
    if configs.get(configs.base) is None:
        return Checked()
    problems, dropped, targets = _check_keys(tree, configs, jobs, complete and args.multirun)
    if not problems:
        problems = _check_values(configs, jobs, dropped)
    if not problems:
        problems = [p for (target, _), o in targets.items() if (p := _target_problem(target, o))]
    if problems:
        return Checked("\n".join(dict.fromkeys(problems)))
    if not dropped:
        return Checked()
    return Checked(
        jobs=[
            [
                *(o.input_line for o in job.overrides if (i, o.get_key_element()) not in dropped),
                f"hydra.sweep.subdir={i}",
            ]
            for i, job in enumerate(jobs)
        ]
    )


def check(argv: list[str]) -> Checked:
    """Check every option, key and value of ``argv`` before any job starts (nothing
    heavy is imported, unless a ``+key`` adds an argument to a ``_target_``)."""
    if any(flag in argv for flag in HELP_FLAGS):
        return Checked()
    parsed = _parse(argv)
    if isinstance(parsed, str):
        return Checked(parsed)
    args, overrides = parsed
    found = _tree_of(args)
    if found is None:
        return Checked()  # a user's own config tree: leave the checks to Hydra
    tree, searchpath = found

    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    with contextlib.ExitStack() as stack:

        @functools.cache
        def loader() -> Any:  # Hydra, started once and only when a check needs it
            stack.enter_context(
                initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3")
            )
            return GlobalHydra.instance().config_loader()

        problems = _problems(overrides, tree, loader)
        if problems:
            return Checked("\n".join(problems))
        loader()
        return _check_jobs(args, overrides, tree, searchpath, loader)


def check_argv(argv: list[str]) -> str | None:
    """Return one message describing every bad option, key or value in ``argv``, or None."""
    return check(argv).problem
