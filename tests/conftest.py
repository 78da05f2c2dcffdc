import signal
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # tests/naive.py, the oracle

# A test run started in the background of a script (`cmd &`, nohup) inherits an ignored Ctrl-C,
# which rnnlab rightly leaves ignored; the Ctrl-C tests need it live, as at a terminal (the
# processes they start then get it too: exec keeps only an ignored disposition).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(params=["compiled", "reference"])
def engine_path(request, monkeypatch):
    """Run a test on the compiled kernels and again on the reference path (RNNLAB_KERNELS=0):
    modules opt in with ``pytestmark = pytest.mark.usefixtures("engine_path")``."""
    from rnnlab import kernels

    if request.param == "compiled":
        monkeypatch.setenv("RNNLAB_KERNELS", "1")
        if not kernels.usable(torch.zeros(1)):
            pytest.skip("compiled kernels unavailable here")
    else:
        monkeypatch.setenv("RNNLAB_KERNELS", "0")
    return request.param
