"""Hydra sweeper plugin of losslab: launch a given list of jobs (``hydra/sweeper=jobs``)."""
