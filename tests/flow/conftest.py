import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread():
    """These tests run many tiny tensor ops, which intra-op threading only slows down on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
