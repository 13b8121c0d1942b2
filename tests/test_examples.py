"""Every script in examples/ runs, in its small mode, in a fresh interpreter.

A script must offer ``--small`` or run small without arguments. Exit status 77 means
"skipped" (its data or an optional extra is missing) and is reported as a skip.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))
SKIPPED = 77
TIMEOUT = 600


def _env(data_root: Path | None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OMP_NUM_THREADS", "2")
    env["CLUSTERG_QUIET"] = "1"
    env["MPLBACKEND"] = "Agg"
    if data_root is not None:
        env["CLUSTERG_DATA"] = str(data_root.resolve())
    return env


def _run(args, tmp_path, data_root):
    return subprocess.run([sys.executable, *map(str, args)], cwd=tmp_path, env=_env(data_root), capture_output=True,
                          text=True, timeout=TIMEOUT)


def test_there_are_examples():
    names = {p.name for p in EXAMPLES}
    assert {"cluster_photos.py", "cluster_features.py", "pyg_model.py"} <= names


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, tmp_path, shared_data_dir):
    help_ = _run([script, "--help"], tmp_path, shared_data_dir)
    assert help_.returncode == 0, f"{script.name} --help failed:\n{help_.stderr[-3000:]}"
    args = ["--small"] if "--small" in help_.stdout else []  # else the script must be small by default
    res = _run([script, *args], tmp_path, shared_data_dir)
    if res.returncode == SKIPPED:
        pytest.skip(f"{script.name}: {res.stdout.strip().splitlines()[-1] if res.stdout.strip() else 'skipped'}")
    assert res.returncode == 0, (f"{script.name} {' '.join(args)} failed (exit {res.returncode}); every example "
                                 f"needs --small or a small default run:\n{res.stderr[-3000:]}")
    assert res.stdout.strip(), f"{script.name} printed nothing"
    assert "Traceback" not in res.stderr
