"""The runner: the only code that knows how datasets, models, losses,
regularizers, noise, optimizers and schedulers fit together.

Entry point: :func:`losslab.runner.app.launch` (``losslab train``).
"""
