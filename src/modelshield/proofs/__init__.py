"""Zero-knowledge proofs of inference (on ezkl): prove that a committed ONNX model produced an output.

``setup`` turns an ONNX model into a circuit with its keys and a manifest binding them to the model's
SHA-256 (file and weights); ``prove`` runs the circuit on one private input and writes a proof that
carries the public output; ``verify`` checks a proof against a setup folder and, optionally, an expected
model hash. ezkl is the optional ``proofs`` extra: it is imported only when one of these runs.

See docs/proofs.md for what a proof shows and what it does not.
"""

from __future__ import annotations

from modelshield.proofs import zk
from modelshield.proofs.zk import *  # noqa: F403 - the package's API is zk's, listed once in zk.__all__

__all__ = zk.__all__
