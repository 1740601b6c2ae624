"""Objectives: what fooling a model means, as a loss to minimise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class IdentityAway:
    """Push each face's embedding away from its original identity, optionally toward a fixed decoy.

    ``clean[k]`` holds the original embeddings [F,D] under surrogate k; ``decoy[k]`` a unit vector [D] (the same
    for every photo of one user, so that all their uploads agree on one wrong identity). Models count equally:
    the loss is the mean over surrogates of the mean cosine similarity to the original, minus
    ``decoy_weight`` times the mean cosine similarity to the decoy.
    """

    clean: Sequence[Tensor]
    decoy: Sequence[Tensor] | None = None
    decoy_weight: float = 0.5

    def __call__(self, embeddings: Sequence[Tensor]) -> Tensor:
        if len(embeddings) != len(self.clean):
            raise ValueError("one embedding batch per surrogate is required")
        terms = []
        for k, e in enumerate(embeddings):
            term = (e * self.clean[k]).sum(-1).mean()
            if self.decoy is not None and self.decoy_weight:
                term = term - self.decoy_weight * (e @ self.decoy[k]).mean()
            terms.append(term)
        return torch.stack(terms).mean()

    def similarity(self, embeddings: Sequence[Tensor]) -> Tensor:
        """Per surrogate, per face cosine similarity to the original: [K,F] (for reporting)."""
        return torch.stack([(e * c).sum(-1) for e, c in zip(embeddings, self.clean)])
