"""Wall time of ``losslab train --help`` against Hydra's own help for the same config.

Each measurement is a fresh interpreter, as a user runs the command: losslab's
help (``python -m losslab train --help``) and Hydra's unchanged ``--help`` of the
same config tree (a plain ``@hydra.main`` application of ``pkg://losslab.conf``).
Prints the median of each, their ratio, whether the two texts are the same, and\nthe start-up time of ``losslab train`` (its imports) that both include.

    python scripts/bench_help.py [--repeat 5] [ARGS ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

HYDRA_HELP = (
    "import sys\n"
    "import hydra\n"
    "sys.argv = ['losslab train', *sys.argv[1:]]\n"
    "app = hydra.main(version_base='1.3', config_path='pkg://losslab.conf', config_name='train')\n"
    "app(lambda cfg: None)()\n"
)


def _time(cmd: list[str], repeat: int) -> tuple[float, str]:
    env = {**os.environ}
    env.pop("HYDRA_FULL_ERROR", None)
    times, out = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        out = proc.stdout
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each (median)")
    parser.add_argument("args", nargs="*", help="extra arguments of losslab train")
    opts = parser.parse_args()
    args = [*opts.args, "--help"]
    ours, our_text = _time([sys.executable, "-m", "losslab", "train", *args], opts.repeat)
    hydra, hydra_text = _time([sys.executable, "-c", HYDRA_HELP, *args], opts.repeat)
    floor, _ = _time([sys.executable, "-c", "import losslab.cli, losslab.runner.app"], opts.repeat)
    print(f"losslab train {' '.join(args)}: {ours:.3f} s (median of {opts.repeat})")
    print(f"Hydra's own help:    {hydra:.3f} s (median of {opts.repeat})")
    print(f"ratio Hydra/losslab: {hydra / ours:.1f}x")
    print(f"start-up (imports of losslab train alone): {floor:.3f} s")
    print(f"same text: {our_text == hydra_text}")


if __name__ == "__main__":
    main()
