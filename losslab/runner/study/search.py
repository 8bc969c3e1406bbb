"""What each trial of a loss tries: the whole grid when it fits the budget, else seeded TPE.

A loss's space (its own parameters, the optimizer's, its regularizers') is a
grid when every parameter lists its values and the grid has no more points than
the budget (``study.trials``): then every point is tried once, and the search is
exhaustive. Otherwise Optuna's TPE sampler proposes ``study.trials`` points,
seeded by ``study.seed``: the first ``startup_trials`` at random, the others
modelled on the results so far.

Every trial is a configuration not tried before: TPE re-proposes points of a
discrete space that it already tried; such a proposal is told the result the
point had and not run (nor counted), and TPE asks again (after
:data:`MAX_REPEATS` repeats, the next untried point of the grid in a seeded
random order is taken instead).

A proposal depends only on the seed and on the results told before it, so a
study that is run again proposes the same trials in the same order and finds
them already done: nothing is stored between runs but the run directories.
"""

from __future__ import annotations

import json
from typing import Any

from losslab.runner.study.spaces import Interval, grid, grid_size

#: TPE proposals of an already-tried point before an untried one is drawn instead.
MAX_REPEATS = 20


def _key(values: dict[str, Any]) -> str:
    return repr(sorted(values.items()))


class Search:
    """The trials of one loss: :meth:`ask` the next one, :meth:`tell` its result.

    Args:
        params: full override key (``loss.q``) -> list of values or :class:`Interval`.
        trials: the budget.
        seed: TPE's seed.
        startup_trials: TPE's random trials.
        direction: ``maximize`` or ``minimize``.
    """

    def __init__(
        self,
        params: dict[str, list[Any] | Interval],
        trials: int,
        *,
        seed: int,
        startup_trials: int,
        direction: str,
    ) -> None:
        self.params = params
        self.size = grid_size(params)
        self.method = "grid" if self.size is not None and self.size <= trials else "tpe"
        self.budget = self.size if self.method == "grid" else trials
        self.asked = 0
        self._points = grid(params) if self.method == "grid" else None  # type: ignore[arg-type]
        self._study: Any = None
        self._pending: dict[int, Any] = {}
        self._seed = seed
        self._tried: dict[str, int] = {}  # values -> trial number
        self._results: dict[int, float | None] = {}
        if self.method == "tpe":
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            sampler = optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=min(startup_trials, trials)
            )
            self._study = optuna.create_study(direction=direction, sampler=sampler)

    @property
    def done(self) -> bool:
        return self.asked >= self.budget

    def ask(self) -> tuple[int, dict[str, Any]]:
        """The next trial: its number and its values."""
        number = self.asked
        self.asked += 1
        if self._points is not None:
            return number, dict(self._points[number])
        for _ in range(MAX_REPEATS):
            trial, values = self._propose()
            seen = self._tried.get(_key(values))
            if seen is None:
                break
            self._told(trial, self._results.get(seen))  # a repeat: not run, not counted
        else:
            if self.size is not None:  # a discrete space: an untried point, as TPE's trial
                import warnings

                import optuna

                point = self._untried()
                with warnings.catch_warnings():  # enqueue_trial is "experimental" in Optuna 2
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    self._study.enqueue_trial(
                        {k: json.dumps(v) if "," in k else v for k, v in point.items()}
                    )
                    trial, values = self._propose()
        self._pending[number] = trial
        self._tried[_key(values)] = number
        return number, values

    def _propose(self) -> tuple[Any, dict[str, Any]]:
        trial = self._study.ask()
        values = {}
        for key, space in self.params.items():
            if isinstance(space, Interval):
                values[key] = trial.suggest_float(key, space.low, space.high, log=space.log)
            elif "," in key:  # tied values: Optuna's categories are scalars
                choice = trial.suggest_categorical(key, [json.dumps(v) for v in space])
                values[key] = json.loads(choice)
            else:
                values[key] = trial.suggest_categorical(key, space)
        return trial, values

    def _untried(self) -> dict[str, Any]:
        import random

        points = [p for p in grid(self.params) if _key(p) not in self._tried]  # type: ignore[arg-type]
        return random.Random(self._seed + len(self._tried)).choice(points)

    def tell(self, number: int, value: float | None) -> None:
        """The result of trial ``number``: its objective, None when it failed."""
        self._results[number] = value
        trial = self._pending.pop(number, None)
        if trial is not None:
            self._told(trial, value)

    def _told(self, trial: Any, value: float | None) -> None:
        import optuna

        if value is None:
            self._study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self._study.tell(trial, value)
