"""Goal function: what the search is trying to make the surrogate classifiers do.

The author's real attributes are unknown when a post is protected, so the goal is untargeted and relative to
the surrogates' own reading of the original: for every attribute, the class the ensemble picked for the
original must lose its lead by ``margin``. Pushing a post just past the decision boundary (not far beyond it)
is what makes the attribute unreadable rather than flipped: a post that reads as confidently "male" once it
was "female" still leaks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .classifiers import AttributeEnsemble


@dataclass(frozen=True)
class GoalState:
    original_class: dict[str, int]  # attribute -> index of the class read from the original


@dataclass
class ConcealAttributes:
    ensembles: dict[str, AttributeEnsemble]
    margin: float
    skip_classes: dict[str, str] | None = None  # attribute -> class that needs no hiding (region: "unmarked")
    every_model: bool = False  # each surrogate of an attribute must lose its lead, not only their mean

    def start(self, text: str) -> GoalState:
        original = {}
        for attr, ens in self.ensembles.items():
            k = int(np.argmax(ens.predict_proba([text])[0]))
            if self.skip_classes and self.skip_classes.get(attr) == ens.classes[k]:
                continue
            original[attr] = k
        return GoalState(original)

    def losses(self, texts: Sequence[str], state: GoalState) -> np.ndarray:
        """Per text: Σ over attributes of max(0, p[original] − max other p + margin) (with ``every_model``, the
        mean of that over the attribute's surrogates, each on its own probabilities). 0 = goal reached."""
        total = np.zeros(len(texts))
        for attr, k in state.original_class.items():
            ens = self.ensembles[attr]
            probs = [m.predict_proba(texts) for m in ens.models] if self.every_model else [ens.predict_proba(texts)]
            for p in probs:
                others = np.delete(p, k, axis=1).max(axis=1)
                total += np.maximum(0.0, p[:, k] - others + self.margin) / len(probs)
        return total

    def reached(self, loss: float) -> bool:
        return loss <= 1e-9
