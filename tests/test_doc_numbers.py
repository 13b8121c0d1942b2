"""The numbers the documentation quotes come from a results file a documented command writes.

``benchmarks/doc_numbers.py`` writes ``docs/benchmarks/doc_numbers.json`` and lists, in ``CLAIMS``, the
text each page quotes from it; here every claim is rendered from the file and looked up in its page.
A second check reads every hand-written page for times (s, ms, min) and sizes (MB, GB, GiB): each must
sit inside one of those claims or be a setting listed in :data:`SETTINGS`, so that a timing typed into
the docs by hand, or left behind when the file is regenerated, fails here. Pages generated from other
results files (``report.md`` / ``report.rst.inc`` from ``results.json``, the regimes tables from
``regimes.json``, ``knn_gemm.md``, the calibration table) are checked by their own writers.
"""
import json
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import doc_numbers  # noqa: E402

RESULTS_FILE = REPO / "docs" / "benchmarks" / "doc_numbers.json"

#: hand-written pages (generated ones are written by their results file's command)
PAGES = sorted({REPO / "README.md", *(REPO / "docs").glob("*.rst"), *(REPO / "docs" / "tutorials").glob("*.rst")})

#: hand-written pages this check does not read yet, with the reason (each is a known gap, not a pass)
UNCHECKED: dict[str, str] = {}

#: numbers with a unit that are settings or limits, not measurements: (page, the text around them)
SETTINGS = [
    ("docs/gcn_ve.rst", "stop after 10 minutes"),  # the --time-limit 600 of the example command beside it
    ("docs/scale-out.rst", "node with 64 GB"),  # the machine size a bound is worked out for (arithmetic)
    ("docs/scale-out.rst", "95M images in 35 min on 4 GPUs"),  # cited: "as published by their authors"
]

#: a time or a size: 3.3 s, 17 s, 0.4-0.8 ms, 4 minutes, 2.4 GB, 1.2 MB
QUANTITY = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:\s?-\s?\d[\d,]*(?:\.\d+)?)?\s?"
                      r"(?:ms|s|min|minutes?|seconds?|hours?|MB|GB|GiB|MiB|KB)(?![\w])")


@pytest.fixture(scope="module")
def results() -> dict:
    assert RESULTS_FILE.is_file(), f"{RESULTS_FILE} is missing: run {doc_numbers.COMMAND}"
    return json.loads(RESULTS_FILE.read_text())


def test_results_file_names_its_command(results):
    assert results["command"] == doc_numbers.COMMAND
    for section in ("training", "pipelines", "baselines", "structure_space", "metrics", "hac", "ada_ablation"):
        assert section in results, f"section {section} missing: run {doc_numbers.COMMAND} --only {section}"
        assert results["machine"][section]["cores"] >= 1


@pytest.mark.parametrize("page,template", doc_numbers.CLAIMS,
                         ids=[f"{p.split('/')[-1]}:{t[:40]}" for p, t in doc_numbers.CLAIMS])
def test_each_quoted_number_is_the_results_files(results, page, template):
    text = (REPO / page).read_text(encoding="utf-8")
    expected = doc_numbers.render(template, results)
    assert expected in text, f"{page} should say {expected!r} (from {RESULTS_FILE.name}); regenerate or edit"


def _claim_spans(page: str, text: str, results: dict) -> list[tuple[int, int]]:
    spans = []
    for p, template in doc_numbers.CLAIMS:
        if p == page:
            s = doc_numbers.render(template, results)
            spans += [(m.start(), m.end()) for m in re.finditer(re.escape(s), text)]
    for p, snippet in SETTINGS:
        if p == page:
            spans += [(m.start(), m.end()) for m in re.finditer(re.escape(snippet), text)]
    return spans


def _is_setting(text: str, start: int) -> bool:
    """Options and limits (``--time-limit 600``, ``timeout 1800``, ``timeout_s=300``) are not measurements."""
    before = text[max(0, start - 40):start]
    return bool(re.search(r"(timeout|time[-_ ]limit|--and-time|--gcn-time|bound of|within|under|at most|"
                          r"per-test|limit)\W*$", before, re.I))


def test_no_time_or_size_in_the_docs_without_its_source(results):
    missing = []
    for path in PAGES:
        page = str(path.relative_to(REPO))
        if page in UNCHECKED:
            continue
        text = path.read_text(encoding="utf-8")
        spans = _claim_spans(page, text, results)
        for m in QUANTITY.finditer(text):
            if any(a <= m.start() and m.end() <= b for a, b in spans) or _is_setting(text, m.start()):
                continue
            line = text.count("\n", 0, m.start()) + 1
            missing.append(f"{page}:{line}: {m.group(0)!r} in {text[max(0, m.start() - 50):m.end() + 20]!r}")
    assert not missing, ("times or sizes with no results file behind them (add them to "
                         "benchmarks/doc_numbers.py CLAIMS, or remove them):\n" + "\n".join(missing))
