"""Poisoning and backdoors: find poisoned training rows and backdoored models.

The engine behind the ``poisoning`` audit check and ``modelshield harden backdoor``:

* :mod:`~modelshield.poisoning.data` — training-data checks: label issues by confident learning,
  exact/near duplicates and train/test leakage, outliers; results name rows by index, never by value;
* :mod:`~modelshield.poisoning.activations` — penultimate-layer activations of PyTorch/TorchScript models;
* :mod:`~modelshield.poisoning.model` — activation clustering, spectral signatures (white box) and
  STRIP (any model);
* :mod:`~modelshield.poisoning.removal` — drop flagged rows and retrain, fine-pruning;
* :mod:`~modelshield.poisoning.planted` — planted attacks (BadNets-style triggers, label flipping) for
  evaluation.

The engine imports only models, data and the base modules (``docs/architecture.md``).
"""

from __future__ import annotations

__all__: list[str] = []
