"""``CLUSTERG_REQUIRE_DATA=1`` (what ``.ci/run`` sets): a run without the real data stops at once with one
message naming every missing folder; without the switch the same tests skip with a reason. Each case runs
pytest in a subprocess on a tiny test file with the repository's ``conftest.py`` as a plugin (seconds)."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("clusterg_root_conftest", REPO / "conftest.py")
root_conftest = importlib.util.module_from_spec(_spec)  # the repository's root conftest.py, by path
_spec.loader.exec_module(root_conftest)

TINY = '''
def test_reads_real_data(shared_data):
    assert (shared_data / "celeba").is_dir()

def test_needs_nothing():
    assert True
'''


def _pytest(tmp_path, data: Path, require: bool) -> subprocess.CompletedProcess:
    (tmp_path / "t").mkdir(exist_ok=True)
    test = tmp_path / "t" / "test_tiny.py"
    test.write_text(TINY)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "CLUSTERG_REQUIRE_DATA")}
    env.update(CLUSTERG_DATA=str(data), PYTHONPATH=str(REPO), CLUSTERG_REQUIRE_DATA="1" if require else "0")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
                           "-rs", str(test)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_missing_data_stops_the_session_at_once_naming_what_is_missing(tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    res = _pytest(tmp_path, empty, require=True)
    out = res.stdout + res.stderr
    assert res.returncode == pytest.ExitCode.USAGE_ERROR, out
    assert "CLUSTERG_REQUIRE_DATA=1 but these are missing" in out
    for name in root_conftest.REQUIRED_DATA:  # every missing folder named, with its full path
        assert str(empty / name) in out, name
    assert "passed" not in out and "test_needs_nothing" not in out  # no test ran


def test_absent_data_root_is_named(tmp_path):
    res = _pytest(tmp_path, tmp_path / "nowhere", require=True)
    out = res.stdout + res.stderr
    assert res.returncode == pytest.ExitCode.USAGE_ERROR, out
    assert f"real data folder {tmp_path / 'nowhere'}" in out and "is absent" in out


def test_without_the_switch_the_same_run_skips_with_a_reason(tmp_path):
    res = _pytest(tmp_path, tmp_path / "nowhere", require=False)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "1 passed, 1 skipped" in out and "real data not found" in out


def test_partial_data_lists_only_the_missing_sets(tmp_path, monkeypatch):
    data = tmp_path / "data"
    for name in root_conftest.REQUIRED_DATA[1:]:
        (data / name).mkdir(parents=True)
    monkeypatch.setenv("CLUSTERG_DATA", str(data))
    missing = [m for m in root_conftest.missing_requirements() if m.startswith("real data")]
    assert missing == [f"real data set {data / root_conftest.REQUIRED_DATA[0]} "
                       f"($CLUSTERG_DATA={data}/{root_conftest.REQUIRED_DATA[0]})"]
