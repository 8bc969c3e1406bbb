"""Fuzz ``losslab train`` with random override lists: every one must end cleanly.

Each list mixes keys of the composed default config with random values (wrong
types, out-of-range numbers, NaN, unresolvable interpolations, quotes), random
config group options (some that do not exist) and malformed overrides. Every
run must end either completed (exit 0, ``results.json`` saying so) or with exit
1 or 2, and never print a Python traceback. ``trainer.epochs=1`` and the CPU are
fixed so that each run is short.

    python scripts/fuzz_overrides.py                 # 200 lists, seed 0
    python scripts/fuzz_overrides.py --count 50 --seed 3

Prints each bad case and ``fuzz_overrides: N/N ok``; exits 1 if any list failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

#: Values a fuzzed key may get (as override text).
VALUES = [
    "0",
    "1",
    "-1",
    "2",
    "7",
    "1000",
    "0.0",
    "0.5",
    "-0.5",
    "1e3",
    "nan",
    "inf",
    "-inf",
    "true",
    "false",
    "null",
    "abc",
    "''",
    "'a b'",
    "[]",
    "[1,2]",
    "{}",
    "{a:1}",
    "${nope}",
    "${oc.env:LOSSLAB_FUZZ_UNSET}",
    "${trainer.batch_size}",
    '"\'"',
]
#: Options that do not exist, for the config groups.
BAD_OPTIONS = ["nope", "", "[nope]", "ce,gce"]
#: Malformed or unusual overrides.
ODD = [
    "+trainer.extra=1",
    "++trainer.grad_clip=1",
    "~seed",
    "~trainer",
    "a.b.c=1",
    "=3",
    "loss=",
    "trainer=5",
    "seed",
    "seed=1,2",
    "'quoted'=1",
    "trainer.epochs=",
]
#: Keys left out: the length of the run, and where Hydra writes.
FIXED = ("trainer.epochs", "trainer.device", "hydra")


def _config_space() -> tuple[list[str], dict[str, list[str]]]:
    """Leaf keys of the composed default config, and the options of each config group."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    with initialize_config_module(config_module="losslab.conf", version_base="1.3"):
        cfg = compose(config_name="train")
        loader = GlobalHydra.instance().config_loader()
        groups = {
            g: list(loader.get_group_options(g))
            for g in ("dataset", "model", "loss", "noise", "optimizer", "scheduler", "method")
        }
        groups["regularizer"] = [f"[{o}]" for o in loader.get_group_options("regularizer")]
    plain = OmegaConf.to_container(cfg, resolve=False)

    def leaves(node, prefix=""):
        if isinstance(node, dict) and node:
            for k, v in node.items():
                yield from leaves(v, f"{prefix}{k}.")
        else:
            yield prefix.rstrip(".")

    keys = [k for k in leaves(plain) if k and not k.startswith(FIXED)]
    return keys, groups


def override_lists(seed: int, count: int) -> list[list[str]]:
    """``count`` random override lists, the same for the same seed."""
    keys, groups = _config_space()
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        overrides = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.random()
            if kind < 0.55:
                overrides.append(f"{rng.choice(keys)}={rng.choice(VALUES)}")
            elif kind < 0.85:
                group = rng.choice(sorted(groups))
                option = (
                    rng.choice(BAD_OPTIONS) if rng.random() < 0.2 else rng.choice(groups[group])
                )
                overrides.append(f"{group}={option}")
            else:
                overrides.append(rng.choice(ODD))
        out.append(overrides)
    return out


def check(overrides: list[str], run_dir: Path, timeout: float = 600) -> str | None:
    """Run one list; None when it ended cleanly, else what went wrong."""
    return run_one(overrides, run_dir, timeout)[1]


def run_one(
    overrides: list[str], run_dir: Path, timeout: float = 600
) -> tuple[int | None, str | None]:
    """Run one list: (exit code, None when it ended cleanly or else what went wrong)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline"}
    env.pop("HYDRA_FULL_ERROR", None)
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "losslab",
                "train",
                f"hydra.run.dir={run_dir}",
                "trainer.epochs=1",
                "trainer.device=cpu",
                *overrides,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=run_dir.parent,
        )
    except subprocess.TimeoutExpired:
        return None, f"no end within {timeout} s"
    code, out = proc.returncode, proc.stdout + proc.stderr
    if "Traceback" in out:
        return code, "traceback:\n" + out[out.index("Traceback") :][-1500:]
    if code not in (0, 1, 2):
        return code, f"exit code {code}:\n{out[-800:]}"
    if code == 0:
        try:
            status = json.loads((run_dir / "results.json").read_text())["status"]
        except (OSError, ValueError, KeyError) as exc:
            return code, f"exit 0 without a completed results.json ({exc})"
        if status != "completed":
            return code, f"exit 0 with status {status}"
    return code, None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="losslab-fuzz-"))
    bad = 0
    codes: dict[str, int] = {}
    for i, overrides in enumerate(override_lists(args.seed, args.count)):
        code, problem = run_one(overrides, root / f"run-{i}")
        codes[str(code)] = codes.get(str(code), 0) + 1
        if problem:
            bad += 1
            print(f"[{i}] {' '.join(overrides)}\n    {problem}", flush=True)
    tally = ", ".join(f"exit {c}: {n}" for c, n in sorted(codes.items()))
    print(f"fuzz_overrides: {args.count - bad}/{args.count} ok ({tally}; {root})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
