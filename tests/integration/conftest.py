from collections.abc import Iterator

import pytest

from ..support.fixtures import aws_credentials, simulator, stack  # noqa: F401  (shared fixtures)
from ..support.https_origin import HttpsOrigin


@pytest.fixture
def https_origin() -> Iterator[HttpsOrigin]:
    """Serves cdn.test and images.test, which no DNS server knows: only the policy's own
    resolver (which the tests give) leads to it."""
    origin = HttpsOrigin(("cdn.test", "images.test"))
    yield origin
    origin.close()
