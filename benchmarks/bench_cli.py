"""Start-up time of the command line: ``clusterg --version`` and ``--help`` against ``import clusterg``.

The command line imports only what a sub-command needs, so ``--version`` and ``--help`` cost about
as much as importing the package (goal: under 1 s; torch and PyTorch Geometric load only for the
learned methods). Each round runs a fresh interpreter; compare the medians of the three groups.
"""
import subprocess
import sys

import pytest

RUNS = {
    "import": [sys.executable, "-c", "import clusterg"],
    "version": [sys.executable, "-m", "clusterg", "--version"],
    "help": [sys.executable, "-m", "clusterg", "--help"],
    "cluster-help": [sys.executable, "-m", "clusterg", "cluster", "--help"],
}


@pytest.mark.parametrize("what", list(RUNS))
def test_cli_startup(benchmark, what):
    benchmark.group = "cli start-up"
    result = benchmark.pedantic(subprocess.run, args=(RUNS[what],), kwargs=dict(capture_output=True, text=True),
                                rounds=5, iterations=1, warmup_rounds=1)
    assert result.returncode == 0, result.stderr
    if what != "import":
        assert "clusterg" in result.stdout
    assert "torch" not in result.stderr
