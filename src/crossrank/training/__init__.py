"""Training cross-encoders (``crossrank train``): data, BM25 negatives, the group-wise loop, checkpoints.

Nothing heavy is imported here; import :mod:`crossrank.training.trainer` for :class:`Trainer`.
"""
