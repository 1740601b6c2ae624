"""Searches: how the perturbation is found."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .base import Attack, Problem, StepCallback
from .transforms import gaussian_blur


@dataclass
class PGD(Attack):
    """Projected sign-gradient descent with momentum (MI-FGSM), which transfers better to unseen models.

    The step size decays on a cosine schedule to ``final_fraction`` of its start: large early steps explore,
    small late steps settle inside the budget.
    """

    steps: int
    step_size: float
    momentum: float = 0.9
    final_fraction: float = 0.1
    random_start: bool = True
    generator: torch.Generator = field(default_factory=lambda: torch.Generator().manual_seed(0))

    def run(self, problem: Problem, callback: StepCallback) -> Tensor:
        x0 = problem.x0
        delta = torch.zeros_like(x0)
        if self.random_start:
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
    step_size: float
    sigma: float = 1.5
    momentum: float = 0.9
    final_fraction: float = 0.1
    generator: torch.Generator = field(default_factory=lambda: torch.Generator().manual_seed(0))

    def run(self, problem: Problem, callback: StepCallback) -> Tensor:
        x0 = problem.x0
        delta = torch.zeros_like(x0)
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
