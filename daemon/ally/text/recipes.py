"""Recipes: a level's attack as a composition of goal + constraints + transformation + search.

The same decomposition TextAttack uses; the parts are ours (white-box linear surrogates make the search cheap
enough for a post to be protected in well under a second on a laptop CPU).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..levels import TextSettings
from .classifiers import AttributeEnsemble
from .constraints import (
    CandidateConstraint,
    LikelyName,
    Locked,
    MaxChangedFraction,
    NoRepeat,
    PreTransformation,
    SentenceSimilarity,
    WordSimilarity,
)
from .embed import Embedder, WordVectors
from .goals import ConcealAttributes
from .resources import BreameLists
from .search import GreedyWordSwap
from .transformations import (
    Compose,
    DeleteFillers,
    Exclamations,
    ExpandContractions,
    Normalise,
    Register,
    SpellingVariants,
    Synonyms,
    Transformation,
)

# The goal asks each surrogate of an attribute to lose its lead, not only their mean: the mean can cross the
# boundary while one model still reads the attribute plainly, and what one model still reads, a held-out one
# of another kind tends to read too.
EVERY_MODEL = True
# Deleting voice fillers ("Just", "honestly") takes the author's voice away: only high (explicit granularity
# "remove") asks for it; lower levels delete only interjections and laughter, the tone they tone down (issue 18).
FILLERS_AT = "remove"


@dataclass
class Recipe:
    goal: ConcealAttributes
    transformation: Transformation
    pre: list[PreTransformation]
    checks: list[CandidateConstraint]
    meaning: SentenceSimilarity | None
    budget: MaxChangedFraction
    search: GreedyWordSwap


def conceal_recipe(settings: TextSettings, surrogates: dict[str, AttributeEnsemble], *,
                   synonyms: dict[str, list[str]], breame: BreameLists | None,
                   embedder: Embedder | None, word_vectors: WordVectors | None) -> Recipe:
    parts: list[Transformation] = [Normalise(), DeleteFillers(voice=settings.explicit == FILLERS_AT),
                                   ExpandContractions(), Register(), Exclamations()]
    if breame is not None:
        parts.append(SpellingVariants(breame))
    parts.append(Synonyms(synonyms, banned=frozenset(breame.british_to_american) if breame is not None else frozenset()))
    budget = MaxChangedFraction(settings.max_changed)
    checks: list[CandidateConstraint] = []
    if word_vectors is not None:
        checks.append(WordSimilarity(word_vectors, settings.min_word_similarity))
    return Recipe(
        goal=ConcealAttributes(surrogates, settings.margin, skip_classes={"region": "unmarked"},
                               every_model=EVERY_MODEL),
        transformation=Compose(parts),
        pre=[Locked(), NoRepeat(), LikelyName(), budget],
        checks=checks,
        meaning=SentenceSimilarity(embedder, settings.min_similarity) if embedder is not None else None,
        budget=budget,
        search=GreedyWordSwap(beam=settings.beam),
    )
