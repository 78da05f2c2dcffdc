"""PyTorch's own recurrent-module tests, on torch.nn and on rnnlab, side by side.

    python tests/pytorch_suite.py PYTORCH_TEST_DIR [--only modules,nn,packed,pruning,autocast]

PYTORCH_TEST_DIR is the ``test/`` folder of a PyTorch source checkout (the wheel ships no test
files); use the release of the installed torch, or expect tests that fail on torch.nn itself.
The selected tests run twice, each time in a fresh process: once as they are, once with
torch.nn's six recurrent classes (RNN, LSTM, GRU and the cells) replaced by rnnlab's before
anything imports ``torch.testing._internal`` or a test file, so that ``module_db``, ``nn.LSTM``
in the test files and ``torch.nn.RNN`` all mean rnnlab's. Then it prints the totals of each run
and every test that passes on torch.nn but not on rnnlab, grouped by the first line of its
error. Not a test of the suite (it needs PyTorch's sources); the suite's own driver over
``module_db`` is tests/test_torch_module_db.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

NAMES = ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell")
#: file and pytest -k expression of each part (test names that concern recurrent modules)
SUITES = {
    "modules": ("test_modules.py", "(nn_RNN or nn_LSTM or nn_GRU) and cpu"),
    "nn": ("test_nn.py", "(rnn or lstm or gru or cell or pack or cudnn_forward_exception "
                         "or variable_sequence or partial_flat_weights or cudnn_weight_format "
                         "or cudnn_weight_tying or device_mask) and not Transformer_cell and "
                         "not fb_fc_packed"),
    "packed": ("nn/test_packed_sequence.py", None),
    "pruning": ("nn/test_pruning.py", "rnn or lstm or gru"),
    "autocast": ("test_autocast.py", "rnn or lstm or gru"),
}


def _swap_in_rnnlab() -> None:
    import torch.nn
    import torch.nn.modules
    import torch.nn.modules.rnn

    assert "torch.testing._internal.common_modules" not in sys.modules
    import rnnlab

    for name in NAMES:
        for namespace in (torch.nn, torch.nn.modules, torch.nn.modules.rnn):
            setattr(namespace, name, getattr(rnnlab, name))


class _Recorder:
    """A pytest plugin: the worst outcome of each test and its first error lines."""

    RANK = {"error": 4, "failed": 3, "passed": 2, "xfailed": 1, "skipped": 0}

    def __init__(self) -> None:
        self.results: dict[str, dict] = {}

    def pytest_runtest_logreport(self, report) -> None:
        if report.passed and report.when != "call":
            return
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "failed"
        elif report.passed or report.skipped:
            outcome = "passed" if report.passed else "skipped"
        else:
            outcome = "failed" if report.when == "call" else "error"
        message = ""
        if outcome not in ("passed", "xfailed"):
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)
        previous = self.results.get(report.nodeid)
        if previous is None or self.RANK[outcome] > self.RANK[previous["outcome"]]:
            self.results[report.nodeid] = {"outcome": outcome, "message": message[:2000]}


def _run(impl: str, tests: Path, parts: list[str], out: Path) -> None:
    """In the child process: run the parts on ``impl`` and write the outcomes to ``out``."""
    if impl == "rnnlab":
        _swap_in_rnnlab()
    import pytest

    sys.argv = [sys.argv[0]]  # torch's common_utils parses the command line at import
    os.chdir(tests)
    recorder = _Recorder()
    for part in parts:
        path, expression = SUITES[part]
        args = [path, "-p", "no:cacheprovider", "-q", "--tb=no", "-W",
                "ignore::DeprecationWarning"] + (["-k", expression] if expression else [])
        pytest.main(args, plugins=[recorder])
    out.write_text(json.dumps(recorder.results))


def _first_line(message: str) -> str:
    return next((ln.strip() for ln in message.splitlines() if ln.strip()), "(no message)")


def _totals(results: dict) -> str:
    counts = Counter(r["outcome"] for r in results.values())
    return f"{len(results)} tests: " + ", ".join(f"{counts[k]} {k}" for k in sorted(counts))


def compare(on_torch: dict, on_rnnlab: dict) -> int:
    """Print the comparison; the number of tests that pass on torch.nn only."""
    print(f"torch.nn: {_totals(on_torch)}\nrnnlab:   {_totals(on_rnnlab)}")
    worse = {k: on_rnnlab.get(k, {"outcome": "missing", "message": "not collected"})
             for k, v in on_torch.items()
             if v["outcome"] == "passed" and on_rnnlab.get(k, {}).get("outcome") != "passed"}
    groups = defaultdict(list)
    for k, v in worse.items():  # numbers aside, one line of error is one behaviour
        groups[re.sub(r"\d+", "N", _first_line(v["message"]))].append(k)
    print(f"\n{len(worse)} pass on torch.nn but not on rnnlab, {len(groups)} behaviour(s)")
    for tests in sorted(groups.values(), key=len, reverse=True):
        print(f"\n[{len(tests)}] {_first_line(worse[tests[0]]['message'])}")
        print("".join(f"    {t}\n" for t in sorted(tests)), end="")
    failing = sorted(k for k, v in on_torch.items() if v["outcome"] in ("failed", "error"))
    print(f"\n{len(failing)} fail on torch.nn itself (not a target):")
    for k in failing:
        print(f"    {k}: {_first_line(on_torch[k]['message'])[:160]}")
    return len(worse)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tests", type=Path, help="the test/ folder of a PyTorch checkout")
    parser.add_argument("--only", default=",".join(SUITES), help="parts, comma-separated")
    parser.add_argument("--impl", choices=("torch", "rnnlab"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    parts = [p for p in args.only.split(",") if p]
    unknown = [p for p in parts if p not in SUITES]
    if unknown or not (args.tests / "test_modules.py").is_file():
        parser.error(f"unknown part(s) {unknown}" if unknown else
                     f"{args.tests} is not a PyTorch test folder (no test_modules.py)")
    if args.impl:  # the child
        _run(args.impl, args.tests.resolve(), parts, args.out)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for impl in ("torch", "rnnlab"):
            out = Path(tmp) / f"{impl}.json"
            subprocess.run([sys.executable, __file__, str(args.tests), "--only", args.only,
                            "--impl", impl, "--out", str(out)], check=True,
                           stdout=subprocess.DEVNULL)
            results[impl] = json.loads(out.read_text())
    return 1 if compare(results["torch"], results["rnnlab"]) else 0


if __name__ == "__main__":
    sys.exit(main())
