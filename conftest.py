"""Fixtures shared by ``tests/`` and ``benchmarks/``: where the real data sets are, and quiet progress bars.

``CLUSTERG_REQUIRE_DATA=1`` (set by ``.ci/run``) turns every skip into a failure that names what is missing:
the real data, a shipped checkpoint, an installed extra (dlib, infomap, sphinx). A skip that is by design in
some configurations (a benchmark size, a feature dimension) gives a reason starting with ``"not applicable"``
and stays a skip. Before any test runs, the session stops (exit status 4) with one message listing every
missing data folder (:data:`REQUIRED_DATA`), shipped checkpoint and test module, rather than failing test
after test on the same missing folder.
"""
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from clusterg._progress import set_quiet

REPO = Path(__file__).resolve().parent
REQUIRE_DATA = "CLUSTERG_REQUIRE_DATA"
NOT_APPLICABLE = "not applicable"  # skip reasons starting so stay skips under CLUSTERG_REQUIRE_DATA=1
#: skips a library raises by design in some configurations (scikit-learn's array-API check needs
#: SCIPY_ARRAY_API=1, an opt-in of SciPy that clusterg does not use): they stay skips too
THIRD_PARTY_SKIPS = ("SCIPY_ARRAY_API is not set",)


#: the folders of ``$CLUSTERG_DATA`` (or ``../shared/data``) that tests and benchmarks read
REQUIRED_DATA = ("celeba", "celeba6k", "pins14", "orl", "yale", "umist", "tweet89", "face-images")
#: the checkpoints clusterg ships (``clusterg/weights``)
REQUIRED_WEIGHTS = ("gcn_v_dlib128.pt", "gcn_e_dlib128.pt", "ada_nets_dlib128.pt")
#: modules of the ``test`` extra that whole test files need (import name: what installs it)
REQUIRED_MODULES = {"dlib": "dlib-bin", "face_recognition_models": "face_recognition_models",
                    "infomap": "infomap", "sphinx": "sphinx", "pytest_benchmark": "pytest-benchmark",
                    "hypothesis": "hypothesis", "matplotlib": "matplotlib", "PIL": "Pillow",
                    "torch_geometric": "torch-geometric"}


def data_required() -> bool:
    """True when ``$CLUSTERG_REQUIRE_DATA`` is set to anything but ``""`` / ``"0"``: skips fail."""
    return os.environ.get(REQUIRE_DATA, "").strip() not in ("", "0")


def _data_path() -> Path:
    env = os.environ.get("CLUSTERG_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data")


def shared_data_root() -> Path | None:
    """``$CLUSTERG_DATA`` or ``../shared/data`` beside the repository, if it exists."""
    root = _data_path()
    return root if root.is_dir() else None


def _skip_reason(longrepr) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: reason")
        longrepr = longrepr[2]
    text = str(longrepr)
    return text[len("Skipped: "):] if text.startswith("Skipped: ") else text


def _skip_to_failure(report) -> None:
    reason = _skip_reason(report.longrepr)
    if reason.startswith(NOT_APPLICABLE) or any(r in reason for r in THIRD_PARTY_SKIPS):
        return
    report.outcome = "failed"
    report.longrepr = (f"{REQUIRE_DATA}=1 makes this skip a failure; missing: {reason}")


def pytest_report_header(config):
    root = _data_path()
    return (f"clusterg real data: {root} ({'found' if root.is_dir() else 'MISSING'}); "
            f"{REQUIRE_DATA}={'1: skips fail' if data_required() else 'unset: missing data skips'}")


def missing_requirements() -> list[str]:
    """What the ``CLUSTERG_REQUIRE_DATA=1`` run needs and does not find: one line each."""
    root = _data_path()
    src = f"$CLUSTERG_DATA={os.environ['CLUSTERG_DATA']}" if os.environ.get("CLUSTERG_DATA") else "../shared/data"
    if not root.is_dir():
        missing = [f"real data folder {root} ({src}) is absent: needs {', '.join(REQUIRED_DATA)}"]
    else:
        missing = [f"real data set {root / name} ({src}/{name})" for name in REQUIRED_DATA
                   if not (root / name).is_dir()]
    weights = REPO / "clusterg" / "weights"
    missing += [f"shipped checkpoint {weights / w}" for w in REQUIRED_WEIGHTS if not (weights / w).is_file()]
    missing += [f"module {mod} (pip install {pkg}, or pip install -e \".[test]\")"
                for mod, pkg in REQUIRED_MODULES.items() if importlib.util.find_spec(mod) is None]
    return missing


def pytest_sessionstart(session):
    if not data_required():
        return
    missing = missing_requirements()
    if missing:
        pytest.exit(f"{REQUIRE_DATA}=1 but these are missing:\n  " + "\n  ".join(missing) +
                    f"\n(unset {REQUIRE_DATA} to run with them skipped)", returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_configure(config):
    if data_required():  # a module whose extra is missing fails, and the other modules still run
        config.option.continue_on_collection_errors = True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and data_required():
        _skip_to_failure(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and data_required():  # module-level skips: pytest.importorskip("dlib"), ...
        _skip_to_failure(report)


@pytest.fixture(autouse=True, scope="session")
def _quiet():
    set_quiet(True)
    yield


@pytest.fixture(scope="session")
def shared_data_dir() -> Path | None:
    """The real data folder, or None when absent (for code that runs either way)."""
    return shared_data_root()


@pytest.fixture(scope="session")
def shared_data(shared_data_dir) -> Path:
    """The real data sets in ../shared/data (or $CLUSTERG_DATA); skips when absent."""
    if shared_data_dir is None:
        where = (f"CLUSTERG_DATA={os.environ['CLUSTERG_DATA']} is not a folder" if os.environ.get("CLUSTERG_DATA")
                 else f"{_data_path()} is absent and CLUSTERG_DATA is unset")
        pytest.skip(f"real data not found: {where}")
    return shared_data_dir


@pytest.fixture(scope="session")
def shared_set(shared_data):
    """``shared_set(name, split, dim=128) -> (x, y)``: one real set in the MS1M layout; skips when absent."""
    from clusterg.data import MS1MDataset

    def load(name: str, split: str, dim: int = 128):
        feats = shared_data / name / "features" / f"{split}.bin"
        if not feats.is_file():
            pytest.skip(f"real data set {name}/{split} not present: {feats} is missing")
        ds = MS1MDataset(shared_data / name, split, dim=dim)
        return np.asarray(ds.x), ds.y

    return load
