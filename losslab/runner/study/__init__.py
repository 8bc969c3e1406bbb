"""``losslab study``: every loss tuned with the same budget, then re-run with several seeds.

- :mod:`~losslab.runner.study.spaces`: the search spaces declared beside the
  losses, regularizers and optimizers (``conf/space/<group>/<option>.yaml``).
- :mod:`~losslab.runner.study.options`: the command line and its checks.
- :mod:`~losslab.runner.study.search`: grid and seeded TPE proposals.
- :mod:`~losslab.runner.study.protocol`: the rounds of trials, the selection, the
  re-runs, ``study.json``.
- :mod:`~losslab.runner.study.table`: the final table.
"""
