"""Suite-wide fixtures: the real model cache (pulled by tests/run.sh) and the opt-in slow marker."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ally_models.cache import CacheError, ModelCache, default_cache

# tests/run.sh sets this: there the models were just pulled, so a missing model is a failure, not a skip.
REQUIRE_MODELS_ENV = "ALLY_REQUIRE_MODELS"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run the slow evaluation tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow evaluation: opt in with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def model_cache() -> ModelCache:
    return default_cache()


@pytest.fixture(scope="session")
def real_model(model_cache: ModelCache) -> Callable[[str], dict[str, Path]]:
    """``real_model(model_id) -> {file name: path}`` from the model cache, verified.

    Skips when the model was not pulled — except under tests/run.sh (``ALLY_REQUIRE_MODELS=1``), which pulls
    every model first, so there a missing model fails the test instead of hiding it.
    """

    def get(model_id: str) -> dict[str, Path]:
        try:
            return model_cache.files(model_id)
        except CacheError as e:
            if os.environ.get(REQUIRE_MODELS_ENV) == "1":
                pytest.fail(f"model {model_id} not in the cache although the test command pulled it: {e}")
            pytest.skip(f"model {model_id} not in the cache ({e}); run `ally models pull {model_id}`")

    return get
