"""SIGKILL a run at random moments; the same command afterwards must finish it exactly.

For each trial: start ``losslab train`` into a fresh directory, SIGKILL it after a
random delay drawn over the whole length of an uninterrupted run (start-up
included; re-measured, and the moment drawn again, whenever a run ends before its
kill), then run the same command again to its end. Each trial must end
``completed`` with final/best/reliability records and metrics.jsonl bitwise equal
to the uninterrupted run's (wall-clock fields aside), with its plots, and with no
``.tmp`` file left behind.

    python scripts/kill_resume.py                 # 20 kills of the default command
    python scripts/kill_resume.py --trials 5 --seed 1 -- trainer.epochs=5

Prints one line per trial and ``kill_resume: N/N trials ok``; exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMAND = [
    "loss=aldr",
    "regularizer=[elr]",
    "noise=symmetric",
    "noise.rate=0.4",
    "scheduler=multistep",
    "trainer.warmup_epochs=2",
]


def strip_times(obj):
    if isinstance(obj, dict):
        return {k: strip_times(v) for k, v in obj.items() if not k.startswith("time")}
    if isinstance(obj, list):
        return [strip_times(v) for v in obj]
    return obj


def train(run_dir: Path, overrides: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "losslab", "train", f"hydra.run.dir={run_dir}", *overrides],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def outcome(run_dir: Path) -> dict:
    results = json.loads((run_dir / "results.json").read_text())
    metrics = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {
        "status": results["status"],
        "records": {k: strip_times(results.get(k)) for k in ("final", "best", "reliability")},
        "metrics": strip_times(metrics),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="extra overrides after the command's")
    args = parser.parse_args()
    overrides = [*COMMAND, *args.overrides]
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="losslab-kill-"))

    started = time.monotonic()
    reference = root / "uninterrupted"
    proc = train(reference, overrides)
    _, err = proc.communicate()
    length = time.monotonic() - started
    if proc.returncode != 0:
        print(f"the uninterrupted run failed (rc {proc.returncode}):\n{err[-2000:]}")
        return 1
    expected = outcome(reference)
    print(f"uninterrupted run: {length:.1f} s; {len(expected['metrics'])} epochs")

    ok = 0
    for trial in range(args.trials):
        # A run that ends before its kill (the machine got faster) is no trial: the
        # length is re-measured from it and another moment is drawn.
        for attempt in range(10):
            run_dir = root / f"trial-{trial}-{attempt}"
            delay = rng.uniform(0.0, length)
            began = time.monotonic()
            proc = train(run_dir, overrides)
            try:
                proc.wait(timeout=delay)
                length = time.monotonic() - began
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                break
        else:
            print(f"trial {trial}: every run ended before its kill")
            continue
        done = 0
        if (run_dir / "metrics.jsonl").exists():
            done = len((run_dir / "metrics.jsonl").read_text().splitlines())
        again = train(run_dir, overrides)
        _, err = again.communicate()
        problems = []
        if again.returncode != 0:
            problems.append(f"rc {again.returncode}: {err.strip()[-500:]}")
        else:
            got = outcome(run_dir)
            if got != expected:
                problems.append("records differ from the uninterrupted run")
        if not (run_dir / "plots" / "curves.png").is_file():
            problems.append("no plots/curves.png")
        tmp = [p.name for p in run_dir.rglob("*.tmp")]
        if tmp:
            problems.append(f"left {tmp}")
        if "Traceback" in err:
            problems.append("a traceback on the terminal")
        ok += not problems
        state = "ok" if not problems else "FAILED: " + "; ".join(problems)
        print(f"trial {trial}: killed at {delay:.2f} s after {done} epoch(s) on disk: {state}")
    print(f"kill_resume: {ok}/{args.trials} trials ok ({root})")
    return 0 if ok == args.trials else 1


if __name__ == "__main__":
    sys.exit(main())
