"""Searches: how the perturbation is found."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from .base import Attack, Loss, Problem, StepCallback
from .transforms import gaussian_blur


def _start(problem: Problem) -> Tensor:
    """The perturbation a search starts from: the problem's ``start`` (inside the budget), else zero."""
    if problem.start is None:
        return torch.zeros_like(problem.x0)
    return problem.budget.project(problem.x0, problem.start.detach().clone())


@dataclass
class PGD(Attack):
    """Projected sign-gradient descent with momentum (MI-FGSM), which transfers better to unseen models.

    The step size decays on a cosine schedule to ``final_fraction`` of its start: large early steps explore,
    small late steps settle inside the budget.
    """

    steps: int
    step_size: float | Tensor  # a Tensor [N,1,1,1]: one step size per image
    momentum: float = 0.9
    final_fraction: float = 0.1
    random_start: bool = True
    generator: torch.Generator = field(default_factory=lambda: torch.Generator().manual_seed(0))

    def run(self, problem: Problem, callback: StepCallback) -> Tensor:
        x0 = problem.x0
        delta = _start(problem)
        if self.random_start and problem.start is None:
            noise = torch.rand(x0.shape, generator=self.generator, dtype=x0.dtype) * 2 - 1
            delta = problem.budget.project(x0, noise.to(x0.device) * self.step_size)
        velocity = torch.zeros_like(x0)
        for i in range(self.steps):
            delta.requires_grad_(True)
            loss = problem.loss(problem.perturbed(delta))
            (grad,) = torch.autograd.grad(loss, delta)
            grad = grad / grad.abs().mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
            velocity = self.momentum * velocity + grad
            progress = i / max(1, self.steps - 1)
            step = self.step_size * (self.final_fraction + (1 - self.final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))
            delta = problem.budget.project(x0, delta.detach() - step * velocity.sign())
            callback(i + 1, self.steps, float(loss.detach()))
        return delta


@dataclass
class SmoothPGD(Attack):
    """Projected descent along the normalised, Gaussian-smoothed gradient, with momentum.

    Sign steps (MI-FGSM) push nearly every pixel and channel to the edge of the box independently, which is
    what people see as colour noise. Here the gradient is smoothed (translation-invariant attacks, Dong et al.
    2019: smoother perturbations transfer better to unseen models) and scaled to an RMS of ``step_size``, so
    the perturbation grows where the loss asks for it and stays small elsewhere.
    """

    steps: int
    step_size: float | Tensor  # a Tensor [N,1,1,1]: one step size per image
    sigma: float = 1.5
    momentum: float = 0.9
    final_fraction: float = 0.1
    generator: torch.Generator = field(default_factory=lambda: torch.Generator().manual_seed(0))

    def run(self, problem: Problem, callback: StepCallback) -> Tensor:
        x0 = problem.x0
        delta = _start(problem)
        velocity = torch.zeros_like(x0)
        for i in range(self.steps):
            delta.requires_grad_(True)
            loss = problem.loss(problem.perturbed(delta))
            (grad,) = torch.autograd.grad(loss, delta)
            grad = gaussian_blur(grad, self.sigma)
            grad = grad / grad.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-12)
            velocity = self.momentum * velocity + grad
            direction = velocity / velocity.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-12)
            progress = i / max(1, self.steps - 1)
            step = self.step_size * (self.final_fraction + (1 - self.final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))
            delta = problem.budget.project(x0, delta.detach() - step * direction)
            callback(i + 1, self.steps, float(loss.detach()))
        return delta


@dataclass
class Chain(Attack):
    """Attacks run one after another, each starting from the previous stage's perturbation (chained attacks,
    Al-Maliki et al.): stage k minimises its own loss, or the problem's when its loss is None. One budget, one
    mask, around the same clean image: a chain is a schedule of objectives, not a second perturbation."""

    stages: Sequence[tuple[Attack, Loss | None]]

    def run(self, problem: Problem, callback: StepCallback) -> Tensor:
        total = sum(getattr(search, "steps", 0) for search, _ in self.stages)
        done = 0
        delta = problem.start
        for search, loss in self.stages:
            stage = replace(problem, loss=loss or problem.loss, start=delta)
            offset = done
            delta = search.run(stage, lambda step, _steps, value: callback(offset + step, total, value))
            done += getattr(search, "steps", 0)
        return delta if delta is not None else torch.zeros_like(problem.x0)
