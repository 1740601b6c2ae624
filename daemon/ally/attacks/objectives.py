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

    With ``balance`` > 0 the surrogates are balanced per face instead: a soft maximum (log-sum-exp at
    temperature ``balance``) over the surrogates' terms, so that the model the cloak fools least gets most of
    the push — otherwise the easiest family (two of three surrogates are FaceRes variants) takes the whole
    budget and the others, which is where transfer comes from, are left matching.
    """

    clean: Sequence[Tensor]
    decoy: Sequence[Tensor] | None = None
    decoy_weight: float = 0.5
    balance: float = 0.0

    def __call__(self, embeddings: Sequence[Tensor]) -> Tensor:
        if len(embeddings) != len(self.clean):
            raise ValueError("one embedding batch per surrogate is required")
        terms = []
        for k, e in enumerate(embeddings):
            term = (e * self.clean[k]).sum(-1)  # [F]
            if self.decoy is not None and self.decoy_weight:
                term = term - self.decoy_weight * (e @ self.decoy[k])
            terms.append(term)
        stacked = torch.stack(terms)  # [K,F]
        if self.balance > 0:
            per_face = self.balance * torch.logsumexp(stacked / self.balance, dim=0)
            return per_face.mean()
        return stacked.mean()

    def similarity(self, embeddings: Sequence[Tensor]) -> Tensor:
        """Per surrogate, per face cosine similarity to the original: [K,F] (for reporting)."""
        return torch.stack([(e * c).sum(-1) for e, c in zip(embeddings, self.clean)])
