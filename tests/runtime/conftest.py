import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> Path:
    """The test models: pre-built (device install, EDGERNN_TEST_MODELS) or built here."""
    ready = os.environ.get("EDGERNN_TEST_MODELS")
    if ready:
        return Path(ready)
    pytest.importorskip("torch", reason="building test models needs torch; set "
                                        "EDGERNN_TEST_MODELS to a folder made by "
                                        "'python -m tests.runtime.models DIR'")
    from tests.runtime.models import build_models

    return build_models(tmp_path_factory.mktemp("models"))
