"""The command line of ``losslab study``: the losses, the study's options, the rest.

    losslab study loss=ce,gce,nce_rce,ldr noise=symmetric noise.rate=0.4 study.trials=6

``loss=`` lists the losses (``loss=a,b`` or ``'loss=[a,b]'``; without it, the
losses that an ``experiment=`` preset sweeps); ``study.<key>=<value>`` sets the
options of :class:`StudyOptions`; ``study.space.<key>=<values>`` searches
``<key>`` (``optimizer.lr``, ``loss.q``) over ``<values>`` (a list, or a range
``{low: 1e-3, high: 0.3, log: true}``) instead of its declared space; every other override applies to every run of
the study, as in ``losslab train``. A preset may hold a ``study:`` section with
the same keys; the command line wins.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import yaml

from losslab.runner.preflight import override_key
from losslab.runner.settings import ConfigError

#: Flags of ``losslab train`` that a study passes on to its runs, with their value.
PASSED_FLAGS = ("--config-dir", "-cd")


#: The groups whose declared spaces a study searches unless ``study.search`` says otherwise.
SEARCHED = ("loss", "optimizer", "regularizer")


@dataclass
class StudyOptions:
    """What ``study.<key>=`` sets.

    Attributes:
        trials: the budget: trials (configurations) per loss, the same for every loss.
        seeds: re-runs of each loss's selected configuration, with the runs' ``seed`` + 1
            to ``seed`` + ``seeds`` (the trials run with ``seed``).
        folds: k-fold cross-validation on the training split (null: the validation split).
        seed: seed of the TPE sampler.
        batch: trials of each loss proposed at once (run in parallel by a parallel launcher).
        startup_trials: TPE's random trials before it models the results (null: half
            the budget, at least 1).
        objective: the selection metric, a dotted path into results.json.
        direction: ``maximize`` or ``minimize`` the objective.
        dir: the study's directory (null: ``studies/<losses>-<hash of the command>``).
        search: the groups whose declared spaces are searched (:data:`SEARCHED`); the LDR
            protocol searches the loss's parameters only.
    """

    trials: int = 8
    seeds: int = 3
    folds: int | None = None
    seed: int = 0
    batch: int = 1
    startup_trials: int | None = None
    objective: str = "final.val.acc"
    direction: str = "maximize"
    dir: str | None = None
    search: list[str] = field(default_factory=lambda: list(SEARCHED))

    def tpe_startup(self) -> int:
        """TPE's random trials: ``startup_trials``, else half the budget (at least 1)."""
        if self.startup_trials is not None:
            return self.startup_trials
        return max(1, self.trials // 2)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _keys() -> list[str]:
    return [f.name for f in fields(StudyOptions)]


def _int(key: str, value: Any, minimum: int, *, null: bool = False) -> None:
    if value is None and null:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        valid = f"an integer >= {minimum}" + (" or null" if null else "")
        raise ConfigError(f"study.{key}={value!r} is invalid: must be {valid}")


def check_options(options: StudyOptions) -> StudyOptions:
    """``options`` checked: a :class:`ConfigError` names the bad value and what is valid."""
    _int("trials", options.trials, 1)
    _int("seeds", options.seeds, 1)
    _int("folds", options.folds, 2, null=True)
    _int("seed", options.seed, 0)
    _int("batch", options.batch, 1)
    _int("startup_trials", options.startup_trials, 1, null=True)
    if options.direction not in ("maximize", "minimize"):
        raise ConfigError(
            f"study.direction={options.direction!r} is invalid: choose maximize or minimize"
        )
    if not isinstance(options.objective, str) or not all(options.objective.split(".")):
        raise ConfigError(
            f"study.objective={options.objective!r} is invalid: a dotted path into "
            "results.json, e.g. final.val.acc"
        )
    search = options.search
    if not isinstance(search, list) or not set(search) <= set(SEARCHED):
        raise ConfigError(
            f"study.search={search!r} is invalid: a list of {', '.join(SEARCHED)} (e.g. [loss])"
        )
    if options.dir is not None and not isinstance(options.dir, str):
        raise ConfigError(f"study.dir={options.dir!r} is invalid: a directory path or null")
    return options


def with_values(options: StudyOptions, values: dict[str, Any], where: str) -> StudyOptions:
    """``options`` with ``values`` (from ``where``: the command line or a preset) set."""
    unknown = sorted(set(values) - set(_keys()))
    if unknown:
        raise ConfigError(
            f"unknown study option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join('study.' + k for k in unknown)} ({where}). "
            f"Valid: {', '.join('study.' + k for k in _keys())}"
        )
    return StudyOptions(**{**asdict(options), **values})


@dataclass
class Command:
    """A study's command line, split: losses, study options, the runs' overrides, flags."""

    losses: list[str]
    study: dict[str, Any]
    overrides: list[str]
    flags: list[str]
    #: ``study.space.<key>=<values>``: a space given on the command line (``optimizer.lr``)
    spaces: dict[str, Any] = field(default_factory=dict)

    def given(self) -> set[str]:
        """The keys the overrides set."""
        return {override_key(o) for o in self.overrides}

    def key(self) -> str:
        """8 hex digits that identify the command: a re-run finds its study. Neither
        ``study.dir`` nor Hydra's own overrides (the launcher and its settings) count, so
        a study started locally continues on a cluster."""
        text = json.dumps(
            {
                "losses": self.losses,
                "study": {k: v for k, v in sorted(self.study.items()) if k != "dir"},
                "overrides": sorted(o for o in self.overrides if not is_hydra_override(o)),
                "flags": self.flags,
                "spaces": self.spaces,
            },
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:8]


def is_hydra_override(override: str) -> bool:
    """Whether ``override`` sets Hydra itself (``hydra/launcher=slurm``,
    ``hydra.launcher.n_jobs=2``), which no run records among its overrides."""
    key = override_key(override)
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def split_list(value: str) -> list[str]:
    """``a,b`` or ``[a,b]`` as ``["a", "b"]``."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_command(argv: list[str]) -> Command:
    """Split ``argv``; a :class:`ConfigError` for what cannot be a study's command line."""
    losses: list[str] = []
    study: dict[str, Any] = {}
    overrides: list[str] = []
    flags: list[str] = []
    spaces: dict[str, Any] = {}
    args = iter(argv)
    for arg in args:
        if arg in PASSED_FLAGS:
            flags += [arg, next(args, "")]
        elif arg.startswith("-"):
            raise ConfigError(
                f"unknown flag {arg!r}; losslab study takes overrides, study.<key>=<value> "
                f"and {', '.join(PASSED_FLAGS)} (losslab study --help)"
            )
        elif "=" not in arg:
            raise ConfigError(f"{arg!r} is not an override: write key=value")
        else:
            key, value = arg.split("=", 1)
            if key == "loss":
                losses += split_list(value)
            elif key.startswith("study.space."):
                spaces[key[len("study.space.") :]] = yaml.safe_load(value) if value else None
            elif key.startswith("study."):
                study[key[len("study.") :]] = yaml.safe_load(value) if value else None
            else:
                overrides.append(arg)
    return Command(losses, study, overrides, flags, spaces)
