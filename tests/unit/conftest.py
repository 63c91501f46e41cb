import pytest

from ..support.fakes import World


@pytest.fixture
def world() -> World:
    """The services wired to plain fakes, on a manual clock."""
    return World()
