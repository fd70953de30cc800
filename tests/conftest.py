import pytest
import torch

SINGLE_THREAD_FOLDERS = ("diffusion", "flow", "nn", "planning", "policies")


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread(request):
    """The torch tests in these folders run many tiny tensor ops, which intra-op threading only slows down on a
    loaded machine."""
    if request.path.parent.name not in SINGLE_THREAD_FOLDERS:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
