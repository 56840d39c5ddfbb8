"""The backend contract: a backend only runs the model's forward pass.

Tokenization, windowing, sorting, batching and activation live in :mod:`crossrank.scoring`; a backend
receives a padded batch and returns one fp32 logit per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import InvalidInputError


def check_device(device) -> str | None:
    """``device`` if it names a device crossrank can run on: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``, or
    ``None`` (CUDA when available; ``"auto"`` is the same and becomes ``None``, so every rule that
    depends on the device sees one spelling); anything else is an :class:`InvalidInputError` saying so."""
    if device is None or device == "auto":
        return None
    if isinstance(device, str):
        kind, colon, index = device.partition(":")
        if device == "cpu" or (kind == "cuda" and (not colon or index.isdigit())):
            return device
    raise InvalidInputError(
        f"device must be 'cpu', 'cuda' or 'cuda:N' (or None: CUDA when available), got {device!r}"
    )


@dataclass(frozen=True, slots=True)
class Batch:
    """A padded batch: int64 arrays of shape ``(rows, length)``; ``token_type_ids`` may be ``None``."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray | None

    @property
    def shape(self) -> tuple[int, int]:
        return self.input_ids.shape  # type: ignore[return-value]


@runtime_checkable
class Backend(Protocol):
    """Runs a one-label sequence-classification model."""

    name: str
    dtype: str
    device: str

    def forward(self, batch: Batch) -> np.ndarray:
        """Return the logits of the batch as a float32 array of shape ``(rows,)``."""
        ...
