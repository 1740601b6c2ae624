"""Search: which words to change, in which order.

Greedy by word importance (as TextFooler and PWWS do), with white-box surrogates that make each query cheap:
rank the changeable words by how much deleting each lowers the goal's loss, then walk down that ranking and
keep, for each word, the allowed candidate that lowers the loss most — until the goal is reached or the
budget of changed words is spent. A small beam keeps the ``beam`` best partial rewrites instead of one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .constraints import CandidateConstraint, PreTransformation
from .goals import ConcealAttributes
from .tokens import Edit, Word, apply_edits, widen_deletion
from .transformations import Candidate, Transformation


@dataclass(frozen=True)
class Substitution:
    index: int  # word index
    candidate: Candidate
    edit: Edit


@dataclass
class SearchResult:
    text: str
    substitutions: list[Substitution]
    loss_before: float
    loss_after: float
    queries: int
    reached: bool


def make_edit(text: str, word: Word, candidate: Candidate) -> Edit:
    if candidate.new == "":
        start, end = widen_deletion(text, word.start, word.end)
        return Edit(start, end, text[start:end], "", candidate.reason)
    end = word.end + candidate.through
    return Edit(word.start, end, text[word.start:end], candidate.new, candidate.reason)


@dataclass
class _Beam:
    subs: tuple[Substitution, ...]
    loss: float

    @property
    def changed(self) -> set[int]:
        return {s.index for s in self.subs}


@dataclass
class GreedyWordSwap:
    beam: int = 1
    max_candidates: int = 12  # per word, after constraints
    queries: int = field(default=0, init=False)

    def run(self, text: str, words: Sequence[Word], goal: ConcealAttributes, transformation: Transformation,
            pre: Sequence[PreTransformation], checks: Sequence[CandidateConstraint], *,
            base_edits: Sequence[Edit] = (), progress: Callable[[float], None] | None = None) -> SearchResult:
        self.queries = 0
        state = goal.start(apply_edits(text, base_edits))

        def render(subs: Sequence[Substitution]) -> str:
            return apply_edits(text, [*base_edits, *(s.edit for s in subs)])

        def losses(texts: list[str]) -> np.ndarray:
            self.queries += len(texts)
            return goal.losses(texts, state)

        start_loss = float(losses([render(())])[0])
        if goal.reached(start_loss) or not state.original_class:
            return SearchResult(render(()), [], start_loss, start_loss, self.queries, True)

        changeable = [i for i in range(len(words)) if all(c.allows(words, i, set()) for c in pre)]
        if not changeable:
            return SearchResult(render(()), [], start_loss, start_loss, self.queries, False)
        # Word importance: the loss drop when the word is deleted.
        deleted = [render([Substitution(i, Candidate("", "delete"), make_edit(text, words[i], Candidate("", "delete")))])
                   for i in changeable]
        drop = start_loss - losses(deleted)
        order = [changeable[j] for j in np.argsort(-drop, kind="stable")]

        beams = [_Beam((), start_loss)]
        for step, i in enumerate(order):
            if progress:
                progress(step / len(order))
            proposals: list[_Beam] = list(beams)
            for b in beams:
                if goal.reached(b.loss) or not all(c.allows(words, i, b.changed) for c in pre):
                    continue
                cands = [c for c in transformation.candidates(words, i) if all(k.allows(words, i, c) for k in checks)]
                cands = cands[:self.max_candidates]
                if not cands:
                    continue
                taken = [*base_edits, *(s.edit for s in b.subs)]
                subs = [Substitution(i, c, make_edit(text, words[i], c)) for c in cands]
                # a deletion widened to a neighbouring space can touch the edit of the word beside it
                subs = [s for s in subs if not any(s.edit.start < e.end and e.start < s.edit.end for e in taken)]
                if not subs:
                    continue
                ls = losses([render([*b.subs, s]) for s in subs])
                for s, loss in zip(subs, ls):
                    if loss < b.loss - 1e-6:
                        proposals.append(_Beam((*b.subs, s), float(loss)))
            proposals.sort(key=lambda b: (b.loss, len(b.subs)))
            beams = proposals[:self.beam]
            if goal.reached(beams[0].loss):
                break
        best = beams[0]
        return SearchResult(render(best.subs), list(best.subs), start_loss, best.loss, self.queries,
                            goal.reached(best.loss))
