"""Objectives: what fooling a model means, as a loss to minimise.

One perturbation may have several jobs (hide the identity, hide the expression): each is a *term*, and
``Terms`` weighs them into the one loss that the search minimises under the one budget. A term reads a *view*
(whatever its models need of the current, transformed image) and returns a scalar to minimise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch
from torch import Tensor

View = TypeVar("View")


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


@dataclass(frozen=True)
class ExpressionAway:
    """Push each face's expression, as emotion recognizers read it, away from its clean reading.

    ``clean[k]`` holds surrogate reader k's clean probabilities [F,C]. Untargeted (``target`` None): the loss is
    the log-odds of each reader's clean top class, ``z_y − logsumexp_{j≠y} z_j``, to lower; targeted: minus the
    log-odds of ``target`` (e.g. "neutral": the face reads as expressionless). Log-odds, not log-probabilities:
    a confident reading (p ≈ 1, the common case for a smile) leaves ``log p`` with no gradient (1 − p ≈ 0), so
    a search on it would not start. Each face's term stops pushing below ``-kappa``, so the budget left goes to
    the other terms. Readers and faces count equally.
    """

    clean: Sequence[Tensor]
    target: int | None = None
    kappa: float = 6.0

    def __call__(self, logits: Sequence[Tensor]) -> Tensor:
        if len(logits) != len(self.clean):
            raise ValueError("one logit batch per surrogate reader is required")
        terms = []
        for z, p0 in zip(logits, self.clean):
            if self.target is None:
                term = log_odds(z, p0.argmax(-1))
            else:
                term = -log_odds(z, torch.full((z.shape[0],), self.target, device=z.device))
            terms.append(term.clamp_min(-self.kappa))
        return torch.stack(terms).mean()

    def clean_labels(self) -> Tensor:
        """The readers' joint clean top class per face: [F]."""
        return torch.stack(list(self.clean)).mean(0).argmax(-1)


def log_odds(logits: Tensor, label: Tensor) -> Tensor:
    """[F]: log(p_label / (1 − p_label)) from logits [F,C] — ``z_label − logsumexp`` of the other classes."""
    own = logits.gather(1, label[:, None])[:, 0]
    others = logits.scatter(1, label[:, None], float("-inf"))
    return own - torch.logsumexp(others, dim=1)


@dataclass(frozen=True)
class Terms(Generic[View]):
    """Objective terms under one budget: ``Σ weight · term(view)`` over the named terms.

    Every term sees the same view of a step (the same transform draw), so their gradients agree on what the
    site does to the photo. A term with weight 0 is not evaluated (its models need not run).
    """

    terms: Mapping[str, tuple[float, Callable[[View], Tensor]]]

    def __post_init__(self) -> None:
        if not any(w for w, _ in self.terms.values()):
            raise ValueError("at least one objective term needs a positive weight")

    def __call__(self, view: View) -> Tensor:
        return sum((w * term(view) for w, term in self.terms.values() if w), torch.zeros(()))

    def only(self, *names: str) -> "Terms[View]":
        """The same terms with every other term's weight set to 0 (one stage of a chained attack)."""
        return Terms({n: (w if n in names else 0.0, t) for n, (w, t) in self.terms.items()})
