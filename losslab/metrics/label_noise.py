"""Memorisation diagnostics on a training set with label noise.

A loss that is robust to label noise keeps predicting the clean class of a
mislabelled sample; one that memorises the noise learns to predict the noisy
label. These shares, measured on the training set after every epoch, show when
and how much a loss starts to fit the noise.
"""

from __future__ import annotations

import torch
from torch import Tensor

from losslab.metrics.classification import check_inputs, entropy_of_log_probs, to_python

#: Keys of :func:`noisy_label_diagnostics`, in order.
DIAGNOSTIC_KEYS = (
    "train_noisy_memorized",
    "train_noisy_recovered",
    "train_clean_acc",
    "train_entropy_clean",
    "train_entropy_noisy",
)


def noisy_label_diagnostics(
    logits: Tensor, y_noisy: Tensor, y_clean: Tensor, is_noisy: Tensor
) -> dict[str, float | None]:
    r"""How the model treats the clean- and the noisy-labelled training samples.

    With :math:`\hat y = \arg\max_k z_k`, the noisy-labelled set
    :math:`\mathcal N = \{i : \mathrm{is\_noisy}_i\}` and the clean-labelled set
    :math:`\mathcal C` its complement:

    - ``train_noisy_memorized``: :math:`\frac{1}{|\mathcal N|}\sum_{i \in \mathcal N}
      [\hat y_i = \tilde y_i]`, share of noisy samples predicted as their noisy label;
    - ``train_noisy_recovered``: :math:`\frac{1}{|\mathcal N|}\sum_{i \in \mathcal N}
      [\hat y_i = y_i]`, share predicted as their clean label;
    - ``train_clean_acc``: :math:`\frac{1}{|\mathcal C|}\sum_{i \in \mathcal C}
      [\hat y_i = y_i]`;
    - ``train_entropy_clean``, ``train_entropy_noisy``: mean predictive entropy (nats)
      over :math:`\mathcal C` and :math:`\mathcal N`.

    A key whose group is empty (no noise, or every label noisy) is None, as is any
    non-finite value. The groups are taken from ``is_noisy`` as given.

    Args:
        logits: ``[N, K]`` training-set logits (evaluation mode).
        y_noisy: ``[N]`` training labels as used in training (possibly corrupted).
        y_clean: ``[N]`` true labels.
        is_noisy: ``[N]`` bool, True where the training label was corrupted.

    Returns:
        ``{key: float | None}`` with the keys of :data:`DIAGNOSTIC_KEYS`.

    Raises:
        ValueError: on mismatched shapes or labels outside ``[0, K)``.

    Example:
        >>> z = torch.tensor([[5.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
        >>> d = noisy_label_diagnostics(
        ...     z, torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), torch.tensor([False, True, False])
        ... )
        >>> d["train_noisy_memorized"], d["train_noisy_recovered"], d["train_clean_acc"]
        (0.0, 1.0, 1.0)
    """
    n = logits.shape[0] if logits.ndim == 2 else -1
    if is_noisy.shape != (n,) or y_clean.shape != (n,):
        raise ValueError(
            f"expected logits [N, K] and y_noisy, y_clean, is_noisy [N], got {list(logits.shape)}, "
            f"{list(y_noisy.shape)}, {list(y_clean.shape)} and {list(is_noisy.shape)}"
        )
    y_noisy, valid_noisy = check_inputs(logits, y_noisy)
    y_clean, valid_clean = check_inputs(logits, y_clean)
    logp = torch.log_softmax(logits.to(torch.float64), dim=-1)
    pred = logp.argmax(dim=-1)
    entropy = entropy_of_log_probs(logp)
    noisy = is_noisy.to(device=logits.device, dtype=torch.float64)
    clean = 1.0 - noisy
    n_noisy, n_clean = noisy.sum(), clean.sum()

    def mean_over(values: Tensor, weight: Tensor, size: Tensor) -> Tensor:
        # NaN (-> None) for an empty group, without a host synchronisation
        return torch.where(size > 0, (values * weight).sum() / size.clamp_min(1.0), torch.nan)

    values = [
        mean_over((pred == y_noisy).to(torch.float64), noisy, n_noisy),
        mean_over((pred == y_clean).to(torch.float64), noisy, n_noisy),
        mean_over((pred == y_clean).to(torch.float64), clean, n_clean),
        mean_over(entropy, clean, n_clean),
        mean_over(entropy, noisy, n_noisy),
    ]
    host = to_python(values, valid_noisy & valid_clean, logits.shape[1])
    return dict(zip(DIAGNOSTIC_KEYS, host, strict=True))
