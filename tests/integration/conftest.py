"""Fixtures of the integration tests that use them in several modules."""

import pytest

from tests.integration.webhook_support import Receiver


@pytest.fixture
def receivers():
    started: list[Receiver] = []

    def start(**kwargs) -> Receiver:
        receiver = Receiver(**kwargs)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()
