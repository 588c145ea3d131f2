import os

import pytest


@pytest.fixture(scope="session")
def replicas():
    return int(os.environ.get("E2E_REPLICAS", "1"))
