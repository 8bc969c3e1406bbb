"""``losslab study``: check the command, plan each loss's search, run the rounds of
trials, select, re-run, print the table (:mod:`.protocol` says what each step means)."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from losslab.runner.preflight import override_key
from losslab.runner.settings import ConfigError
from losslab.runner.study.options import (
    Command,
    StudyOptions,
    check_options,
    is_hydra_override,
    parse_command,
    with_values,
)
from losslab.runner.study.protocol import (
    RERUNS,
    TRIALS,
    Job,
    LossStudy,
    Trial,
    format_value,
    job_state,
    study_record,
    write_record,
)
from losslab.runner.study.search import Search
from losslab.runner.study.spaces import Space, check_space, load_space

USAGE = """\
usage: losslab study loss=LOSS,LOSS,... [study.KEY=VALUE ...] [OVERRIDE ...]

Tune every loss with the same budget on one data set and label setting, select
each one's configuration on validation data, re-run it with several seeds and
compare the re-runs. Every trial and re-run is an ordinary run directory; the
same command run again skips what is done and resumes what was interrupted.

  loss=ce,gce,nce_rce,ldr   the losses (or 'loss=[...]'; default: those an
                            experiment= preset sweeps)
  study.trials=8            trials per loss: the whole grid when it has no more
                            points, else seeded Optuna TPE
  study.seeds=3             re-runs of each selected configuration (seeds
                            seed+1 .. seed+N)
  study.folds=null          k-fold cross-validation on the training split (>= 2)
                            instead of the validation split
  study.seed=0              TPE's seed      study.batch=1   trials per loss at once
  study.startup_trials=null TPE's random trials (null: half the budget)
  study.objective=final.val.acc   study.direction=maximize
  study.dir=null            the study's directory (null: studies/<losses>-<hash>)
  study.search=[loss,optimizer,regularizer]  the groups whose spaces are searched
  study.space.KEY=VALUES    search KEY over VALUES instead of its declared space:
                            'study.space.optimizer.lr=[0.01,0.1]' (a grid), or
                            'study.space.optimizer.lr={low: 0.001, high: 0.3, log: true}'
  OVERRIDE                  any `losslab train` override, for every run
                            (noise=symmetric noise.rate=0.4 hydra/launcher=slurm)

Search spaces: conf/space/loss/<loss>.yaml (and optimizer/, regularizer/), each
naming its source; a parameter set on the command line is not searched.
Writes study.json in the study's directory.

example:
  losslab study loss=ce,gce,nce_rce,ldr noise=symmetric noise.rate=0.4 study.trials=6
"""


@dataclass
class Plan:
    """A checked study: its options, its losses' searches, the runs' common overrides."""

    command: Command
    options: StudyOptions
    studies: list[LossStudy]
    common: list[str]
    run_seed: int
    root: Path
    argv: list[str]

    @property
    def command_line(self) -> list[str]:
        return ["losslab", "study", *self.argv]


def _tree_roots(flags: list[str]) -> list[Any]:
    from losslab.runner.preflight import config_tree

    roots: list[Any] = []
    for i, flag in enumerate(flags):
        if flag in ("--config-dir", "-cd") and i + 1 < len(flags):
            roots.append(Path(flags[i + 1]))
    return [*roots, config_tree()]


def compose(overrides: list[str], flags: list[str]) -> DictConfig:
    """The config one run of the study composes (Hydra's own errors say what is wrong)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    import losslab.runner.app  # noqa: F401  (its resolvers)

    extra = [f"hydra.searchpath=[file://{Path(r).resolve()}]" for r in _tree_roots(flags)[:-1]]
    with initialize_config_module(config_module="losslab.conf", version_base="1.3"):
        return hydra_compose("train", overrides=[*overrides, *extra], return_hydra_config=True)


def _check_losses(losses: list[str], roots: list[Any]) -> None:
    from losslab.runner.preflight import group_options

    valid: list[str] = []
    for root in roots:
        valid += [o for o in group_options(root, "loss") if o not in valid]
    unknown = [loss for loss in losses if loss not in valid]
    if unknown:
        raise ConfigError(
            f"unknown loss{'es' if len(unknown) > 1 else ''} {', '.join(unknown)}. "
            f"Valid losses: {', '.join(sorted(valid))}"
        )
    repeated = sorted({loss for loss in losses if losses.count(loss) > 1})
    if repeated:
        raise ConfigError(f"loss={','.join(losses)} lists {', '.join(repeated)} twice")


def _check_overrides(command: Command) -> None:
    """Refuse what a study decides itself, then let ``losslab train``'s checks speak."""
    from losslab.runner.preflight import check_argv

    for override in command.overrides:
        value = override.split("=", 1)[1]
        bare = override_key(override)
        if bare in (
            "hydra/sweeper",
            "hydra.sweep.dir",
            "hydra.sweep.subdir",
            "cv.folds",
            "cv.fold",
        ):
            raise ConfigError(f"{override}: a study sets {bare} itself (see losslab study --help)")
        if "," in value and not value.strip().startswith(("[", "'", '"')):
            raise ConfigError(
                f"{override} is a sweep: a study runs one data set and label setting; "
                "re-runs take study.seeds, losses loss=a,b"
            )
    loss = [f"loss={command.losses[0]}"] if command.losses else []
    problem = check_argv(["-m", *command.flags, *command.overrides, *loss])
    if problem:
        raise ConfigError(problem)


def _preset_losses(cfg: DictConfig) -> list[str]:
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    value = params.get("loss")
    return [] if value is None else [s for s in str(value).split(",") if s]


def _preset_sweep_problems(cfg: DictConfig, command: Command) -> None:
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    given = command.given()
    swept = [k for k in params if k != "loss" and k not in given]
    if swept:
        raise ConfigError(
            f"the preset sweeps {', '.join(f'{k}={params[k]}' for k in swept)}; a study runs "
            f"one setting: choose one, e.g. {swept[0]}={str(params[swept[0]]).split(',')[0]}"
        )


def _spaces(cfg: DictConfig, loss: str, roots: list[Any], searched: list[str]) -> list[Space]:
    """The loss's space, the optimizer's and those of the regularizers, each checked
    against the composed config of its option."""
    choices = cfg.hydra.runtime.choices
    wanted = [
        ("loss", loss, "loss", cfg.loss),
        ("optimizer", choices.get("optimizer"), "optimizer", cfg.optimizer),
    ]
    for name, node in (cfg.get("regularizer") or {}).items():
        wanted.append(("regularizer", name, f"regularizer.{name}", node))
    spaces = []
    for group, option, prefix, node in wanted:
        if option is None or group not in searched:
            continue
        space = load_space(roots, group, option, prefix)
        check_space(space, OmegaConf.to_container(node, resolve=False))
        spaces.append(space)
    return spaces


#: The sections of a run's config whose keys a space may search.
SEARCHABLE = ("loss", "optimizer", "regularizer", "scheduler", "trainer", "augment")


def _command_space(cfg: DictConfig, given: dict[str, Any]) -> tuple[Space | None, set[str]]:
    """The space of the ``study.space.<key>=`` values that this run's config has (a
    ``loss.<key>`` may belong to some of the losses only), and the keys it lacks."""
    from losslab.runner.study.spaces import parse_params

    if not given:
        return None, set()
    params = parse_params("study.space (command line)", given)
    lacking: set[str] = set()
    for key in list(params):
        parts = key.split(",")
        absent = [p for p in parts if OmegaConf.select(cfg, p, default=_ABSENT) is _ABSENT]
        if any(p.split(".")[0] not in SEARCHABLE for p in parts):
            absent = parts
        if absent:
            lacking.update(absent)
            del params[key]
    return (
        Space("", "command line", params, "the command line (study.space.*)") if params else None
    ), lacking


_ABSENT = object()


def _loss_study(
    cfg: DictConfig,
    loss: str,
    command: Command,
    options: StudyOptions,
    roots: list[Any],
    lacks: list[set[str]],
) -> LossStudy:
    spaces = _spaces(cfg, loss, roots, options.search)
    extra, lacking = _command_space(cfg, command.spaces)
    if extra is not None:  # replaces what the files declare for the same keys
        named = {part for k in extra.params for part in k.split(",")}
        for space in spaces:
            space.params = {
                k: v for k, v in space.params.items() if not named & set(space.full(k).split(","))
            }
        spaces.append(extra)
    lacks.append(lacking)
    given = command.given()
    params: dict[str, Any] = {}
    fixed = []
    for space in spaces:
        for key, values in space.params.items():
            full = space.full(key)
            if given & set(full.split(",")):
                fixed.append(full)
            else:
                params[full] = values
    search = Search(
        params,
        options.trials,
        seed=options.seed,
        startup_trials=options.tpe_startup(),
        direction=options.direction,
    )
    return LossStudy(loss, spaces, fixed, search)


def plan(argv: list[str]) -> Plan:
    """The checked study of ``argv``; a :class:`ConfigError` names the first bad input."""
    command = parse_command(argv)
    roots = _tree_roots(command.flags)
    _check_overrides(command)
    if not command.losses:  # those an experiment= preset sweeps
        command.losses = _preset_losses(compose(command.overrides, command.flags))
        if not command.losses:
            raise ConfigError("name the losses to compare: loss=ce,gce,... (losslab study --help)")
    _check_losses(command.losses, roots)
    cfg = compose([*command.overrides, f"loss={command.losses[0]}"], command.flags)
    _preset_sweep_problems(cfg, command)
    preset = cfg.get("study")  # a preset's options (not a result key: record.NOT_RESULTS)
    options = StudyOptions()
    common = list(command.overrides)
    if preset is not None:
        options = with_values(
            options, OmegaConf.to_container(preset, resolve=True), "the preset's study section"
        )
    options = check_options(with_values(options, command.study, "the command line"))
    studies, lacks = [], []
    for loss in command.losses:
        cfg = compose([*common, f"loss={loss}"], command.flags)
        _validate_run(cfg, options)
        studies.append(_loss_study(cfg, loss, command, options, roots, lacks))
    nowhere = sorted(set.intersection(*lacks)) if lacks else []
    if nowhere:
        raise ConfigError(
            f"study.space.{nowhere[0]}: the runs have no {nowhere[0]} to search (a key of "
            f"{', '.join(SEARCHABLE)} in the config of at least one of the losses; e.g. "
            "study.space.optimizer.lr=[0.01,0.1])"
        )
    root = Path(options.dir or f"studies/{_slug(command.losses)}-{command.key()}")
    return Plan(command, options, studies, common, int(cfg.seed), root, list(argv))


def _validate_run(cfg: DictConfig, options: StudyOptions) -> None:
    """The values every run shares, checked as a run checks them, before anything trains."""
    from losslab.runner.build import cv_setting
    from losslab.runner.settings import validate

    validate(cfg)
    if options.folds is not None:
        OmegaConf.update(cfg, "cv", {"folds": options.folds, "fold": 0}, force_add=True)
    cv_setting(cfg)


def _slug(losses: list[str]) -> str:
    text = "-".join(losses)
    return text if len(text) <= 40 else text[:40].rstrip("-")


# --- the rounds ------------------------------------------------------------------------


class Stopped(Exception):
    """Runs of a round did not finish (interrupted, killed): re-running the command resumes."""

    def __init__(self, code: int, pending: list[str]) -> None:
        super().__init__(f"{len(pending)} run(s) did not finish")
        self.code = code
        self.pending = pending


class Runner:
    """Launches the study's rounds and reads back what each run recorded."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rounds = 0
        self.launched = 0

    def expected(self, job: Job) -> list[str]:
        """The overrides a job's results.json records: the task's, not Hydra's own
        (``hydra/launcher=local``, ``hydra.launcher.n_jobs=2`` are not recorded)."""
        task = [o for o in self.plan.common if not is_hydra_override(o)]
        return [*task, *job.overrides]

    def refresh(self, jobs: list[Job]) -> list[Job]:
        """Read each job's state from its directory; return those still to run.

        A job whose config has a bad value (a trial's loss.q outside the loss's range)
        leaves no directory: the launch's record of its refusal makes it a failed trial.
        """
        from losslab.runner.sweep import read_outcomes

        refused = {
            Path(run_dir).resolve(): entry
            for run_dir, entry in read_outcomes(self.plan.root).items()
            if entry.get("status") == "refused" and entry.get("invalid")
        }
        for job in jobs:
            run_dir = self.plan.root / job.subdir
            job.status, job.record, job.error = job_state(run_dir, self.expected(job))
            entry = refused.get(run_dir.resolve())
            if job.status == "pending" and entry is not None:
                job.status, job.error = "failed", str(entry.get("error") or "invalid config")
        return [job for job in jobs if job.status == "pending"]

    def run(self, jobs: list[Job]) -> None:
        """Run the ``jobs`` that are not finished, in one launch; :class:`Stopped` when
        some of them still are not (an interrupted launch, a killed run)."""
        todo = self.refresh(jobs)
        if not todo:
            return
        from losslab.runner.app import launch, quote_value
        from losslab.runner.records import atomic_write_json

        self.rounds += 1
        self.launched += len(todo)
        jobs_file = self.plan.root / ".jobs" / f"launch-{self.rounds}.json"
        atomic_write_json(jobs_file, [job.argv() for job in todo])
        print(
            f"study: launching {len(todo)} run(s) ({', '.join(j.subdir for j in todo[:4])}"
            f"{', ...' if len(todo) > 4 else ''})",
            flush=True,
        )
        code = launch(
            [
                "-m",
                *self.plan.command.flags,
                "hydra/sweeper=jobs",
                f"hydra.sweeper.jobs={quote_value(str(jobs_file.resolve()))}",
                f"hydra.sweep.dir={quote_value(str(self.plan.root.resolve()))}",
                *self.plan.common,
            ]
        )
        pending = self.refresh(jobs)
        if pending:
            raise Stopped(code if code in (130, 143) else 1, [j.subdir for j in pending])


def _trial_jobs(
    study: LossStudy, number: int, values: dict[str, Any], folds: int | None
) -> list[Job]:
    own = [f"loss={study.loss}", *(f"{k}={format_value(v)}" for k, v in values.items())]
    base = f"{TRIALS}/{study.loss}/{number}"
    if not folds:
        return [Job(base, own)]
    return [
        Job(f"{base}/fold{i}", [*own, f"cv.folds={folds}", f"cv.fold={i}"]) for i in range(folds)
    ]


def tune(plan: Plan, runner: Runner, on_round: Any = None) -> None:
    """The trials of every loss, in rounds: each round asks every unfinished search for
    its next trials (the whole grid at once), runs them, and tells the results."""
    from losslab.runner.study.spaces import expand

    options = plan.options
    while not all(st.search.done for st in plan.studies):
        asked: list[Trial] = []
        for st in plan.studies:
            count = st.search.budget if st.search.method == "grid" else options.batch
            for _ in range(min(count, st.search.budget - st.search.asked)):
                number, raw = st.search.ask()
                values = expand(raw)
                trial = Trial(
                    st.loss, number, values, _trial_jobs(st, number, values, options.folds)
                )
                st.trials.append(trial)
                asked.append(trial)
        try:
            runner.run([job for trial in asked for job in trial.jobs])
        finally:
            if on_round is not None:
                on_round("running")
        by_loss = {st.loss: st for st in plan.studies}
        for trial in asked:
            by_loss[trial.loss].search.tell(trial.number, trial.score(options.objective))


def rerun(plan: Plan, runner: Runner) -> None:
    """The selected configuration of every loss that has one, with the re-run seeds."""
    options = plan.options
    jobs: list[Job] = []
    for st in plan.studies:
        chosen = st.selected(options)
        st.reruns = []
        if chosen is None:
            continue
        for seed in range(plan.run_seed + 1, plan.run_seed + options.seeds + 1):
            own = [
                f"loss={st.loss}",
                *(f"{k}={format_value(v)}" for k, v in chosen.values.items()),
                f"seed={seed}",
            ]
            st.reruns.append(Job(f"{RERUNS}/{st.loss}/seed{seed}", own))
        jobs += st.reruns
    runner.run(jobs)


def _save(plan: Plan, status: str) -> None:
    write_record(
        plan.root,
        study_record(
            plan.command_line,
            plan.options,
            plan.studies,
            status,
            plan.root,
            plan.run_seed,
        ),
    )


def main(argv: list[str]) -> int:
    """``losslab study ARGV``; the exit code: 0 done, 1 a loss without a result or a run
    that failed to finish, 2 a bad command (nothing run), 130/143 interrupted."""
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if argv else 2
    try:
        study = plan(argv)
    except ConfigError as exc:
        sys.stderr.write(f"losslab study: {exc}\n")
        return 2
    except Exception as exc:  # Hydra's composition errors (a missing option, a bad key)
        from losslab.runner.app import _one_line

        sys.stderr.write(f"losslab study: {_one_line(exc)}\n")
        return 2
    from losslab.runner.study.table import print_plan, print_result

    print_plan(study)
    runner = Runner(study)
    study.root.mkdir(parents=True, exist_ok=True)
    try:
        tune(study, runner, on_round=lambda status: _save(study, status))
        rerun(study, runner)
    except Stopped as stop:
        _save(study, "interrupted")
        sys.stderr.write(
            f"losslab study: stopped: {len(stop.pending)} run(s) did not finish "
            f"({', '.join(stop.pending[:3])}{', ...' if len(stop.pending) > 3 else ''}). "
            f"Run the same command again to resume: {shlex.join(study.command_line)}\n"
        )
        return stop.code
    _save(study, "completed")
    return print_result(study, runner)
