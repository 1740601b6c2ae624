"""The shape every attack takes: a problem (what to perturb, the objective, the budget) and a search.

As in foolbox, the public call is final and checks its inputs and its result; a search only writes ``run``,
and a budget only writes ``project``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import final

import torch
from torch import Tensor

Loss = Callable[[Tensor], Tensor]
"""Maps a perturbed image batch to a scalar to *minimise* (lower = better protected)."""

StepCallback = Callable[[int, int, float], None]
"""Called after each step with (step, total steps, loss); may raise to stop the search (cancellation)."""


class Budget(ABC):
    """What must stay the same for a person: the set of allowed perturbations."""

    @abstractmethod
    def project(self, x0: Tensor, delta: Tensor) -> Tensor:
        """The closest allowed perturbation to ``delta`` (``x0 + result`` stays inside [0, 1])."""


@dataclass(frozen=True)
class Problem:
    x0: Tensor  # [N,3,H,W] clean images in [0,1]
    loss: Loss
    budget: Budget
    mask: Tensor | None = None  # [N or 1,1,H,W] in [0,1]: where (and how strongly) the perturbation applies
    start: Tensor | None = None  # a perturbation to start from (a previous stage's result); None: from zero

    def perturbed(self, delta: Tensor) -> Tensor:
        return self.x0 + (delta if self.mask is None else delta * self.mask)


class Attack(ABC):
    """A search for a perturbation that lowers ``problem.loss`` within ``problem.budget``."""

    @final
    def __call__(self, problem: Problem, *, callback: StepCallback | None = None) -> Tensor:
        """Returns the perturbation (already masked), detached, inside the budget."""
        x0 = problem.x0
        if x0.dim() != 4 or x0.shape[1] != 3:
            raise ValueError(f"x0 must be [N,3,H,W], got {tuple(x0.shape)}")
        if not torch.isfinite(x0).all() or x0.min() < 0 or x0.max() > 1:
            raise ValueError("x0 must be finite and inside [0, 1]")
        with torch.enable_grad():
            delta = self.run(problem, callback or (lambda *_: None))
        delta = problem.budget.project(x0, delta.detach())
        if problem.mask is not None:
            delta = delta * problem.mask
        return problem.budget.project(x0, delta)

    @abstractmethod
    def run(self, problem: Problem, callback: StepCallback) -> Tensor:
        """The search itself: returns a perturbation of ``problem.x0``'s shape."""
