"""``losslab evaluate RUN_DIR [overrides...]``: evaluate a saved run without training.

The run's model is rebuilt from its config (the Hydra overrides saved in
``RUN_DIR/.hydra/overrides.yaml``, composed again, then the overrides given
here), its weights loaded from ``checkpoint.pt`` (``--best``:
``checkpoint_best.pt``), and its validation and test splits (or those of the data
set the overrides choose, e.g. ``dataset=synthetic dataset.num_classes=10``)
evaluated with the metric code of training (:func:`losslab.runner.evaluation.evaluate`):
on the run's own data set and checkpoint it reproduces the recorded
``final.test`` (or ``best.test``) metrics exactly.

Outputs go into a new folder, ``RUN_DIR/evaluate/<dataset>[-best][-N]/`` or
``--out DIR``: ``evaluation.json`` (the metrics, the checkpoint's epoch, the
overrides) and ``reliability.png``; ``--predictions FILE`` also writes the test
logits, labels and sample indices (as ``eval.save_predictions`` does). The run's
own files are never written.

Errors (not a run directory, no checkpoint, a bad override, a data set whose classes
or input shape differ from the run's) are one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from losslab.runner.records import (
    CHECKPOINT,
    CHECKPOINT_BEST,
    RESULTS,
    atomic_write_json,
    read_json,
    write_predictions,
)
from losslab.runner.settings import ConfigError

PROG = "losslab evaluate"
#: The record of one evaluation in its output folder.
EVALUATION_JSON = "evaluation.json"
EVALUATE_DIR = "evaluate"

DESCRIPTION = """\
Evaluate a saved run on its test split, or on another data set, without training.

The model is rebuilt from the run's saved overrides, then OVERRIDES (Hydra syntax, e.g.
dataset=synthetic dataset.num_classes=10 dataset.input_shape=[64], trainer.device=cpu,
eval.n_bins=20), and its weights are loaded from RUN_DIR/checkpoint.pt (the last epoch)
or, with --best, RUN_DIR/checkpoint_best.pt (the epoch of best validation accuracy).
Prints the val and test metrics (the names of metrics.jsonl and results.json) and writes
evaluation.json and reliability.png into a new folder: RUN_DIR/evaluate/<dataset>[-best]/
(numbered when it exists) or --out DIR. The run's own files are left as they are.
"""


class EvaluateError(ConfigError):
    """What makes an evaluation impossible: said in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the usage block
        raise EvaluateError(f"{message} (see `{PROG} --help`)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", nargs="?", help="a run directory of `losslab train`"
    )
    parser.add_argument(
        "overrides", metavar="OVERRIDES", nargs="*", help="Hydra overrides (key=value)"
    )
    parser.add_argument(
        "--best", action="store_true", help="evaluate checkpoint_best.pt (the best epoch)"
    )
    parser.add_argument(
        "--predictions",
        metavar="FILE",
        type=Path,
        help="also write the test logits, labels and sample indices to FILE (.npz)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        help="output folder (new or empty); default under RUN_DIR",
    )
    return parser


def saved_overrides(run_dir: Path) -> list[str]:
    """The Hydra overrides the run was trained with (``.hydra/overrides.yaml``)."""
    from losslab.runner.rundir import saved_overrides as read_saved

    if not run_dir.is_dir():
        raise EvaluateError(f"{run_dir} is not a directory")
    try:
        return read_saved(run_dir)
    except ConfigError as exc:
        raise EvaluateError(f"{run_dir}: {exc}") from None


def compose_config(run_dir: Path, overrides: list[str]) -> Any:
    """The run's config, composed from its saved overrides and then ``overrides``
    (which replace saved ones of the same key)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    import losslab.runner.app  # noqa: F401  (its resolvers)
    from losslab.runner.preflight import override_key

    given = {override_key(o) for o in overrides}
    merged = [o for o in saved_overrides(run_dir) if override_key(o) not in given] + overrides
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="losslab.conf", version_base="1.3"):
            return compose(config_name="train", overrides=merged)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        message = message.split(" Config search path:")[0]  # Hydra's own search path
        raise EvaluateError(f"cannot compose the config: {message}") from None


def _load_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    if not path.is_file():
        which = "--best needs checkpoint_best.pt" if path.name == CHECKPOINT_BEST else "no model"
        raise EvaluateError(f"no {path.name} in {path.parent} ({which}); nothing to evaluate")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise EvaluateError(f"{path} cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise EvaluateError(f"{path} is damaged: it holds no model state")
    return ckpt


def _check_data(data: Any, trained: dict[str, Any] | None) -> None:
    """A data set the run's model can evaluate: its classes and input shape."""
    if not isinstance(trained, dict):
        return  # no record of the run's data: the model's weights will tell
    classes, shape = trained.get("num_classes"), trained.get("input_shape")
    here_shape = list(data.input_shape)
    if (classes is not None and classes != data.num_classes) or (
        shape is not None and list(shape) != here_shape
    ):
        raise EvaluateError(
            f"data set '{data.name}' has {data.num_classes} classes and inputs of shape "
            f"{here_shape}, but the run's model was trained on '{trained.get('name')}' with "
            f"{classes} classes and inputs of shape {shape}: choose a data set with the "
            "same classes and input shape (e.g. dataset.num_classes=..., dataset.input_shape=...)"
        )


def _out_dir(run_dir: Path, out: Path | None, name: str) -> Path:
    """A new (or empty) folder for the outputs."""
    if out is not None:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise EvaluateError(f"--out {out} exists and is not an empty folder; choose a new one")
        return out
    base = run_dir / EVALUATE_DIR / name
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def _check_predictions_path(path: Path, run_dir: Path) -> None:
    if path.resolve().parent == run_dir.resolve():
        raise EvaluateError(
            f"--predictions {path} is a file of the run itself; write it elsewhere "
            f"(e.g. {run_dir / EVALUATE_DIR / path.name})"
        )
    if path.is_dir():
        raise EvaluateError(f"--predictions {path} is a folder; give a file name (.npz)")


def evaluate_run(
    run_dir: Path,
    overrides: list[str] | None = None,
    *,
    best: bool = False,
    predictions: Path | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    """Evaluate the model of ``run_dir`` (see the module docstring); returns the
    record written to ``evaluation.json`` (with ``out_dir``).

    Raises:
        EvaluateError / ConfigError: what makes the evaluation impossible, in one line.
    """
    import torch
    from omegaconf import OmegaConf

    from losslab.report.palette import color
    from losslab.report.plots import RELIABILITY_PNG, reliability_diagram
    from losslab.report.record import fingerprints
    from losslab.runner.build import build_model, build_run_data, make_loaders
    from losslab.runner.evaluation import evaluate
    from losslab.runner.loop import ChannelsLast
    from losslab.runner.settings import validate
    from losslab.runner.step import autocast_for

    run_dir = Path(run_dir)
    overrides = list(overrides or [])
    cfg = compose_config(run_dir, overrides)
    ckpt_path = run_dir / (CHECKPOINT_BEST if best else CHECKPOINT)
    ckpt = _load_checkpoint(ckpt_path)
    if predictions is not None:
        _check_predictions_path(predictions, run_dir)
    if out is not None and out.resolve() == run_dir.resolve():
        raise EvaluateError(f"--out {out} is the run directory; choose a new folder")
    settings = validate(cfg)
    record = read_json(run_dir / RESULTS) or {}
    from_run = ckpt.get("fingerprint") in fingerprints(OmegaConf.to_container(cfg, resolve=True))
    if not overrides and not from_run:
        sys.stderr.write(
            f"{PROG}: warning: the config composed from the run's saved overrides is not the "
            "one it was trained with (losslab's defaults changed since?)\n"
        )

    data, _ = build_run_data(cfg, settings)
    _check_data(data, record.get("data"))
    folder = _out_dir(run_dir, out, data.name + ("-best" if best else ""))
    device = torch.device(settings.device)
    model, channels_last = build_model(cfg, device)
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EvaluateError(
            f"{ckpt_path.name} does not fit the model built for data set '{data.name}' "
            f"({first}); evaluate with the run's model and a data set of the same "
            "classes and input shape"
        ) from None
    loaders = make_loaders(data, settings, device, data.info["loader"], seed=cfg.seed)
    loaders = {k: v for k, v in loaders.items() if k in ("val", "test")}
    if channels_last:
        loaders = {k: ChannelsLast(v) for k, v in loaders.items()}
    outputs: dict[str, Any] = {}
    metrics, reliability = evaluate(
        model,
        loaders,
        autocast_for(settings.precision, device),
        cfg.eval.n_bins,
        data,
        outputs=outputs,
    )

    epoch = ckpt.get("epoch")
    result: dict[str, Any] = {
        "run_dir": str(run_dir),
        "checkpoint": ckpt_path.name,
        "epoch": epoch,
        "overrides": overrides,
        "same_config_as_run": from_run,
        "data": {
            "name": data.name,
            "sizes": data.sizes(),
            "num_classes": data.num_classes,
            "input_shape": list(data.input_shape),
        },
        "device": str(device),
        "val": {k.removeprefix("val/"): v for k, v in metrics.items() if k.startswith("val/")},
        "test": {k.removeprefix("test/"): v for k, v in metrics.items() if k.startswith("test/")},
        "reliability": reliability,
    }
    folder.mkdir(parents=True, exist_ok=True)
    if predictions is not None:
        logits, labels, index = (t.cpu().numpy() for t in outputs["test"])
        written = write_predictions(predictions, logits, labels, index, epoch=int(epoch or 0))
        result["predictions"] = {**written, "file": str(predictions)}
    if reliability is not None:
        title = f"{run_dir.name}: {ckpt_path.name} (epoch {epoch}) on {data.name} (test)"
        loss = (record.get("choices") or {}).get("loss") or "ce"
        reliability_diagram(reliability, folder / RELIABILITY_PNG, title, color=color(str(loss)))
    atomic_write_json(folder / EVALUATION_JSON, result)
    result["out_dir"] = str(folder)
    return result


def _table(result: dict[str, Any]) -> str:
    """The metrics as aligned text: one row per metric, val and test columns."""
    names = list(result["test"]) + [k for k in result["val"] if k not in result["test"]]

    def show(value: Any) -> str:
        if isinstance(value, bool) or value is None:
            return "-" if value is None else str(value).lower()
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    width = max(len(n) for n in names) if names else 6
    lines = [f"{'metric':<{width}}  {'val':>10}  {'test':>10}"]
    for name in names:
        val = show(result["val"].get(name)) if name in result["val"] else ""
        test = show(result["test"].get(name)) if name in result["test"] else ""
        lines.append(f"{name:<{width}}  {val:>10}  {test:>10}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``losslab evaluate``; returns the exit code (2 on any error, with one line on stderr)."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        args = _parser().parse_intermixed_args(argv)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except EvaluateError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 2
    if args.run_dir is None:
        sys.stderr.write(f"{PROG}: give the run directory: {PROG} RUN_DIR [overrides...]\n")
        return 2
    try:
        result = evaluate_run(
            Path(args.run_dir).expanduser(),
            args.overrides,
            best=args.best,
            predictions=args.predictions,
            out=args.out,
        )
    except ConfigError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 2
    except OmegaConfBaseException as exc:  # a value of the config that cannot be resolved
        message = " ".join(str(exc).split("\n")[0].split())
        sys.stderr.write(f"{PROG}: bad config value: {message}\n")
        return 2
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        sys.stderr.write(f"{PROG}: cannot write{where}: {exc.strerror or exc}\n")
        return 2
    data = result["data"]
    print(
        f"{result['checkpoint']} (epoch {result['epoch']}) of {result['run_dir']} on "
        f"'{data['name']}' (val/test {data['sizes'].get('val', 0)}/{data['sizes'].get('test', 0)})"
    )
    print(_table(result))
    print(f"outputs: {result['out_dir']}")
    if "predictions" in result:
        print(f"predictions: {result['predictions']['file']}")
    return 0
