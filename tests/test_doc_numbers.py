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
PAGES = sorted({REPO / "README.md", *(REPO / "docs").glob("*.rst"), *(REPO / "docs" / "tutorials").glob("*.rst"),
                REPO / "docs" / "benchmarks" / "regimes_notes.rst.inc"})  # the one hand-written include

#: hand-written pages this check does not read yet, with the reason (each is a known gap, not a pass)
UNCHECKED: dict[str, str] = {}

#: numbers with a unit that are settings or limits, not measurements: (page, the text around them)
SETTINGS = [
    ("docs/gcn_ve.rst", "stop after 10 minutes"),  # the --time-limit 600 of the example command beside it
    ("docs/scale-out.rst", "node with 64 GB"),  # the machine size a bound is worked out for (arithmetic)
    ("docs/benchmarks/notes.md", "streams 5.3 GB to"),  # 5.21M x 256 float32: the file's size (arithmetic)
    ("docs/benchmarks/notes.md", "of the 5.3 GB memory-mapped"),
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
    for p, name, template in doc_numbers.FILE_CLAIMS:
        if p == page:
            s = doc_numbers.render_file_claim(template, _file(name))
            spans += [(m.start(), m.end()) for m in re.finditer(re.escape(s), text)]
    for p, snippet in SETTINGS:
        if p == page:
            spans += [(m.start(), m.end()) for m in re.finditer(re.escape(snippet), text)]
    return spans


def _file(name: str) -> dict:
    path = REPO / "docs" / "benchmarks" / name
    assert path.is_file(), f"{path} is missing"
    return json.loads(path.read_text())


@pytest.mark.parametrize("page,name,template", doc_numbers.FILE_CLAIMS,
                         ids=[f"{p.split('/')[-1]}:{n}:{i}" for i, (p, n, _) in enumerate(doc_numbers.FILE_CLAIMS)])
def test_each_number_quoted_from_another_results_file(page, name, template):
    text = (REPO / page).read_text(encoding="utf-8")
    expected = doc_numbers.render_file_claim(template, _file(name))
    assert expected in text, f"{page} should say {expected!r} (from docs/benchmarks/{name}); regenerate or edit"


def _is_setting(text: str, start: int) -> bool:
    """Options and limits (``--time-limit 600``, ``timeout 1800``, ``timeout_s=300``) are not measurements."""
    before = text[max(0, start - 40):start]
    return bool(re.search(r"(timeout|time[-_ ]limit|--and-time|--gcn-time|bound of|within|under|at most|"
                          r"per-test|limit)\W*$", before, re.I))


NOTES = REPO / "docs" / "benchmarks" / "notes.md"


def _report_table_numbers() -> set[str]:
    """Every number the benchmark report's tables print (rendered from ``results.json`` by
    ``benchmarks/report_render.py``): ``notes.md``, the report's analysis, may quote any of them."""
    tables = (REPO / "docs" / "benchmarks" / "report.md").read_text(encoding="utf-8").split("## Analysis")[0]
    return set(re.findall(r"(?<![\w.])\d[\d,]*\.?\d*", tables))


def test_no_time_or_size_in_the_docs_without_its_source(results):
    """Times and sizes in the hand-written pages; ``notes.md`` (the report's analysis) may also quote any number
    the report's tables print."""
    in_tables = _report_table_numbers()
    missing = []
    for path in [*PAGES, NOTES]:
        page = str(path.relative_to(REPO))
        if page in UNCHECKED:
            continue
        text = path.read_text(encoding="utf-8")
        spans = _claim_spans(page, text, results)
        for m in QUANTITY.finditer(text):
            if any(a <= m.start() and m.end() <= b for a, b in spans) or _is_setting(text, m.start()):
                continue
            if page.endswith("notes.md") and re.match(r"[\d,.]+", m.group(0)).group(0) in in_tables:
                continue
            line = text.count("\n", 0, m.start()) + 1
            missing.append(f"{page}:{line}: {m.group(0)!r} in {text[max(0, m.start() - 50):m.end() + 20]!r}")
    assert not missing, ("times or sizes with no results file behind them (add them to "
                         "benchmarks/doc_numbers.py CLAIMS, or remove them):\n" + "\n".join(missing))


#: a score, a rate or a similarity quoted to three or four decimals (0.892, 0.0012)
SCORE = re.compile(r"(?<![\w.])[01]\.\d{3,4}(?![\d])")

#: blocks a writer other than this test renders and checks: (page, first line, text after the block)
GENERATED = [
    ("README.md", "<!-- regimes-table:", "<!-- /regimes-table -->"),  # benchmarks/regimes.py --readme
    ("docs/library.rst", "celeba-dev      ", "\n\n"),  # quality table: tests/test_library.py
]

#: three-decimal numbers that are settings, grid steps or arithmetic on the page, not measurements
SCORE_SETTINGS = [
    ("docs/ada_nets.rst", 'on a 0.005 grid'), ("docs/ada_nets.rst", "taken over a 0.005 grid"),
    ("docs/defaults.rst", "0.115"),  # the rule constants of clusterg.linkage.auto_threshold.RULES
    ("docs/defaults.rst", "at most 0.005 lost"),  # benchmarks/train_ada_mixture.py's decision rule
    ("docs/defaults.rst", "``SEARCH_K_TOL`` = 0.005"),  # the constant; tests/test_threshold_search.py ties it
    ("docs/gcn_ve.rst", "``tau_0=0.9472``"), ("docs/gcn_ve.rst", "``beta=0.015``"),
    ("docs/gcn_ve.rst", "grid step 0.0025"),
    ("docs/reliability.rst", ">= 0.9999"),
    ("docs/tutorials/photos.rst", "0.013 * log10(N)"),  # the rule, and its value at 48 and 1,000 faces:
    ("docs/tutorials/photos.rst", "(0.922 for 48 faces, 0.939 for 1,000)"),
    ("docs/reid.rst", "(0.005 higher there, at 0.055 lower precision"),  # differences of pseudo_label_eps.json
    ("docs/metrics.rst", "BCubed F 0.759 with singletons, and 0.25 / 0.638"),  # worked example: test_metrics
    ("docs/benchmarks/notes.md", "the sweep's 0.005 grid"),
    ("docs/benchmarks/regimes_notes.rst.inc", "searches at 0.002 steps"),
]

#: scores quoted without a results file behind them yet: (page, text) -> why (known gaps, not passes)
UNSOURCED: dict[tuple[str, str], str] = {
}


def _score_sources(page: str, text: str, results: dict) -> list[tuple[int, int]]:
    spans = _claim_spans(page, text, results)
    for p, first, after in GENERATED:
        if p == page and first in text:
            a = text.index(first)
            spans.append((a, text.index(after, a)))
    for (p, snippet) in [*SCORE_SETTINGS, *UNSOURCED]:
        if p == page:
            spans += [(m.start(), m.end()) for m in re.finditer(re.escape(snippet), text)]
    return spans


def _unsourced(pattern: re.Pattern, results: dict, settings=(), near: re.Pattern | None = None) -> list[str]:
    """Matches of ``pattern`` in the hand-written pages and ``notes.md`` that no results file renders and no
    setting lists (``settings``: more ``(page, snippet)`` pairs); with ``near``, only matches that have a
    match of ``near`` within 60 characters before or 25 after. ``notes.md`` may quote the report's tables."""
    in_tables = _report_table_numbers()
    missing = []
    for path in [*PAGES, NOTES]:
        page = str(path.relative_to(REPO))
        text = path.read_text(encoding="utf-8")
        spans = _score_sources(page, text, results)
        spans += [(m.start(), m.end()) for p, snippet in settings if p == page
                  for m in re.finditer(re.escape(snippet), text)]
        for m in pattern.finditer(text):
            if near is not None and not near.search(text[max(0, m.start() - 60):m.start()] + " "
                                                    + text[m.end():m.end() + 25]):
                continue
            if any(a <= m.start() and m.end() <= b for a, b in spans):
                continue
            if page.endswith("notes.md") and m.group(0) in in_tables:
                continue
            line = text.count("\n", 0, m.start()) + 1
            missing.append(f"{page}:{line}: {m.group(0)!r} in {text[max(0, m.start() - 50):m.end() + 20]!r}")
    return missing


def test_no_score_in_the_docs_without_its_source(results):
    """Every three-decimal score in the hand-written pages is rendered from a results file (or is a setting).

    ``docs/benchmarks/notes.md`` (the analysis of the report) may also quote any number the report's
    tables print: those tables are rendered from ``results.json`` by ``benchmarks/report_render.py``.
    """
    missing = _unsourced(SCORE, results)
    assert not missing, ("scores with no results file behind them (add them to benchmarks/doc_numbers.py "
                         "CLAIMS / FILE_CLAIMS, or remove them):\n" + "\n".join(missing))


#: an F-score (or precision, recall, NMI) quoted to two decimals: a two-decimal number with score words near it
SCORE2 = re.compile(r"(?<![\w.])[01]\.\d{2}(?![\d])")
_SCORE_WORDS = re.compile(r"(\bF\b|F-score|\bFp\b|\bFb\b|pairwise|BCubed|scor|recall|precision|NMI|\blost\b|loses)",
                          re.I)

#: two-decimal numbers near score words that are bounds, settings, ratios or rule constants, not scores
SCORE2_SETTINGS = [
    ("docs/defaults.rst", "rules, 0.87 for"), ("docs/defaults.rst", "``embedding-infomap``  0.90    0.14"),
    ("docs/defaults.rst", "against 0.24 s for one run"),  # a time, checked by the time scan
    ("docs/defaults.rst", "more than 0.03 pairwise F"), ("docs/defaults.rst", "``b`` = 0.25 was rejected"),
    ("docs/defaults.rst", "``a`` of 0.60\nwould have scored higher on tweet89 than the shipped 0.63"),
    ("docs/defaults.rst", "a tolerance of 0.02"), ("docs/defaults.rst", "0.009 at 0.04),\nthe neighbour average picks 0.04"),
    ("docs/gcn_ve.rst", "over 0.90-0.99"),
    ("docs/ada_nets.rst", "pairwise F above 0.95 on those"),  # the bound tests/test_ada_nets.py pins
    ("docs/knn.rst", "in 0.39x to 0.44x of its time"),  # time ratios of docs/benchmarks/knn_gemm.md
    ("docs/library.rst", "(0.25 new faces per library face)"), ("docs/library.rst", "ratio that held (0.11)"),
    ("docs/library.rst", "pins the\n0.02 bound"),
    ("docs/reid.rst", "precision there is at least 0.95"), ("docs/reid.rst", "precision is at least 0.95"),
    ("docs/tutorials/pyg.rst", "kNN + cosine > 0.95"),
    ("docs/benchmarks/notes.md", "faiss-cpu 1.15"),
    ("docs/metrics.rst", "gives pairwise F 0.40"),  # the worked example: tests/test_metrics.py checks it
    ("docs/benchmarks/regimes_notes.rst.inc", "within 0.01 pairwise F of the best plain Infomap"),  # the goal
]


def test_no_two_decimal_score_in_the_docs_without_its_source(results):
    """Scores quoted to two decimals (``pairwise F 0.86``) need a source too; bounds and settings are listed."""
    missing = _unsourced(SCORE2, results, SCORE2_SETTINGS, near=_SCORE_WORDS)
    assert not missing, ("two-decimal scores with no results file behind them (add them to "
                         "benchmarks/doc_numbers.py CLAIMS / FILE_CLAIMS, list a setting in SCORE2_SETTINGS, or "
                         "remove them):\n" + "\n".join(missing))
