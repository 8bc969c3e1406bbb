"""Classification losses, one module per family.

Every loss is an ``nn.Module`` with
``forward(logits [B, K], target [B], *, index=None) -> 0-dim tensor`` (the batch
mean). It converts targets itself; a loss with per-sample state takes
``num_samples`` at construction and keeps that state in registered buffers.
The config tree (``conf/loss/<token>.yaml``) is the registry: the file stem is
the CLI token.
"""
