"""The training loss of one query group: logits of ``[positive, negative, ...]`` (the positive first).

* **Listwise**: softmax cross-entropy over the group, ``-log softmax(z)[0]``. It fixes only the differences
  between a query's logits, so on its own it leaves their level free: a right answer can end at -8 for one
  query and +9 for another, and sigmoid scores mean nothing across queries.
* **Pointwise** (weighted by ``pointwise_weight``): a class-balanced binary cross-entropy that anchors the
  level, the positive above 0 and the negatives below, ``0.5 * (softplus(-z[0]) + mean(softplus(z[1:])))``.
  Whether that makes ``sigmoid(logit)`` a usable probability depends on the data: for the embedded
  backbone (weight 0.5) it lifted right answers above 0.5 but wrong ones too, and the held-out Brier
  score rose (MODEL_CARD.md, recipe v2); measure it with ``crossrank.training.heldout``.
"""

from __future__ import annotations


def group_loss(logits, pointwise_weight: float = 0.0):
    """Loss of one group (a 1-D tensor of logits, the positive first); a 0-d tensor."""
    import torch
    from torch.nn import functional as F

    z = logits.float().reshape(-1)
    listwise = -torch.log_softmax(z, dim=0)[0]
    if not pointwise_weight:
        return listwise
    pointwise = 0.5 * (F.softplus(-z[0]) + F.softplus(z[1:]).mean())
    return listwise + pointwise_weight * pointwise
