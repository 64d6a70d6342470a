"""Poisoning and backdoors: find poisoned training rows and backdoored models.

The engine behind the ``poisoning`` audit check and ``modelshield harden backdoor``:

* :mod:`~modelshield.poisoning.data` — training-data checks: label issues by confident learning,
  exact/near duplicates and train/test leakage, outliers; results name rows by index, never by value;
* :mod:`~modelshield.poisoning.activations` — penultimate-layer activations of PyTorch/TorchScript models;
* :mod:`~modelshield.poisoning.model` — activation clustering, spectral signatures (white box) and
  STRIP (any model);
* :mod:`~modelshield.poisoning.neural_cleanse` — Neural Cleanse trigger reverse-engineering and its
  anomaly index (PyTorch/TorchScript);
* :mod:`~modelshield.poisoning.removal` — drop flagged rows and retrain, fine-pruning;
* :mod:`~modelshield.poisoning.planted` — planted attacks (BadNets-style triggers, label flipping) for
  evaluation.

The engine imports only models, data and the base modules (``docs/architecture.md``).
"""

from __future__ import annotations

from modelshield.poisoning.activations import NoActivations, penultimate_activations
from modelshield.poisoning.data import (
    LABEL_METHODS,
    audit_training_data,
    find_duplicates,
    find_label_issues,
    find_outliers,
    out_of_fold_probabilities,
)
from modelshield.poisoning.model import activation_clustering, spectral_signatures, strip_entropy, strip_test
from modelshield.poisoning.neural_cleanse import NeuralCleanseReport, NoGradients, ReversedTrigger, neural_cleanse
from modelshield.poisoning.planted import Trigger, flip_labels, plant_trigger
from modelshield.poisoning.removal import fine_prune, retrain_without

__all__ = [
    "LABEL_METHODS",
    "NeuralCleanseReport",
    "NoActivations",
    "NoGradients",
    "ReversedTrigger",
    "Trigger",
    "activation_clustering",
    "audit_training_data",
    "find_duplicates",
    "find_label_issues",
    "find_outliers",
    "fine_prune",
    "flip_labels",
    "neural_cleanse",
    "out_of_fold_probabilities",
    "penultimate_activations",
    "plant_trigger",
    "retrain_without",
    "spectral_signatures",
    "strip_entropy",
    "strip_test",
]
