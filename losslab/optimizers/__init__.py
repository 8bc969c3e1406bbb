"""Optimizers beyond ``torch.optim``, selected with ``optimizer=<token>``."""
