"""Evaluation: the cascade of attacks, the batch runner, the checks and what a result records.

- :func:`evaluate` (also ``robust.evaluate``): clean pass, then the attacks as a cascade;
- :mod:`~robust.evaluation.runner`: batches that resume, shard over torchrun ranks and survive out-of-memory errors;
- :mod:`~robust.evaluation.checks`: sanity checks that flag an unreliable evaluation;
- :mod:`~robust.evaluation.detection`, :mod:`~robust.evaluation.examples`,
  :mod:`~robust.evaluation.environment`, :mod:`~robust.evaluation.memory`: what the result records.
"""

from robust.evaluation.cascade import evaluate

__all__ = ["evaluate"]
