import pytest
from django.conf import settings

from inference_worker.engines.transformers_engine import TransformersEngine


@pytest.fixture(scope="session")
def tiny_engine() -> TransformersEngine:
    """The tiny Gemma 3 loaded through the production loading path, once per test run."""
    return TransformersEngine("tiny", cache_dir=settings.DATA_DIR / "models")
