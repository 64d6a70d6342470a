"""Adversarial robustness: threat models, attacks, evaluation, detection and the audit check."""
