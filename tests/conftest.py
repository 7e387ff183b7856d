import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_threads():
    # Tests are tiny; more threads only add scheduling noise on a 2-core machine.
    torch.set_num_threads(1)
    yield
