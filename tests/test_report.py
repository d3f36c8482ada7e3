"""The HTML report (`rstsweep report`, and the one every `run` leaves in the store), opened in a
real browser: headless Chromium (Debian's `chromium`) loads the file from disk, runs its script,
and the test reads the rendered DOM (tables, figures, status with pending and failed cells, plan,
manifests), sorts a table through the page's own JavaScript, checks the console stayed silent and
takes screenshots (desktop and phone width) for a person to look at. No torch, no ray."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from rstsweep.analysis.figures import FIGURES
from rstsweep.analysis.results import load
from rstsweep.analysis.tables import build_tables
from rstsweep.store.store import Store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh installs it)"
)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory, sweeps_file: Path) -> Path:
    """The demo profile's constant, piecewise-1 and p-gamma sweeps (fast CNN), 30% of p-gamma
    not finished (a few of those with a recorded crash)."""
    from rstsweep.testing.synthetic import grid_cells, write_synthetic_store

    root = tmp_path_factory.mktemp("report") / "store"
    cells = grid_cells(sweeps_file, "demo", ["constant", "piecewise-1", "p-gamma"])
    write_synthetic_store(
        root, cells, unfinished={"p-gamma": 0.3}, steps_per_epoch=5, profile="demo"
    )
    return root


def _chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def _text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def _rows(dom: str, table_id: str) -> list[list[str]]:
    table = re.search(rf'<table class="sortable" id="{table_id}">(.*?)</table>', dom, re.S)
    assert table, f"table {table_id} missing"
    body = table.group(1).split("<tbody>", 1)[1]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [[_text(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows]


@needs_browser
def test_report_in_headless_chromium(cli, demo_store: Path, sweeps_file: Path, tmp_path) -> None:
    result = cli("report", "--store", demo_store, "--file", sweeps_file)
    assert result.exit_code == 0, result.stderr
    page = demo_store / "report.html"
    assert result.stdout.strip() == str(page)
    url = page.resolve().as_uri()

    # the page as the browser built it, with the console on stderr (errors would show there)
    shown = _chromium("--enable-logging=stderr", "--v=0", "--dump-dom", url)
    dom = shown.stdout
    assert '<html lang="en" class="js">' in dom  # the inline script ran to its end
    console = [line for line in shown.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    text = _text(dom)

    # every table the store fills, by title, and its first row's cells as the tables render them
    res = load(Store(demo_store, read_only=True))
    tables = build_tables(res)
    assert len(tables) >= 4
    for table in tables:
        assert html.unescape(table.title) in text, table.title
        first = table.display().astype(str).iloc[0].tolist()
        if table.name != "best_at_budget" and table.name in dom:
            assert _rows(dom, table.name)[0] == first
    # one inline SVG per figure the store feeds (independently: the figure functions themselves)
    drawn = [name for name, draw in FIGURES.items() if draw(res, lambda _: None) is not None]
    assert "pareto" in drawn and "figure1" in drawn
    assert dom.count("<figure><svg") == len(drawn)
    assert "src=" not in dom.split("<main>", 1)[1]  # nothing fetched: the file stands alone

    # status: p-gamma's cells not done, failed ones with their error; plan; manifests
    trials = Store(demo_store, read_only=True).read("trials")
    cells = Store(demo_store, read_only=True).read("cells")
    failures = Store(demo_store, read_only=True).read("failures")
    gamma = cells[cells["sweep"] == "p-gamma"]
    open_ids = set(gamma["cell_id"]) - set(trials["cell_id"])
    open_rows = _rows(dom, "open-p-gamma")
    assert {r[0] for r in open_rows} == open_ids
    failed = {r[0]: r for r in open_rows if r[3] == "failed"}
    assert set(failed) == set(failures["cell_id"]) and failed
    assert all("synthetic crash" in r[6] for r in failed.values())
    plan_total = _rows(dom, "plan-p-gamma")[-1]
    assert plan_total[:4] == ["total", str(len(gamma)), str(len(gamma) - len(open_ids)),
                              str(len(open_ids))]  # fmt: skip
    assert dom.count("<summary>manifest</summary>") == len(trials)
    assert '"git_commit"' in dom and '"config"' in dom

    # sorting through the page's script: cells by test error, ascending (URL #sort=TABLE:COLUMN)
    sorted_dom = _chromium("--dump-dom", f"{url}#sort=cells:5").stdout
    ids = [r[0] for r in _rows(sorted_dom, "cells")]
    ok = trials[trials["status"] == "ok"]
    expected = ok.sort_values("test_error", kind="stable")["cell_id"].tolist()
    assert ids[: len(expected)] == expected  # (synthetic test errors have no ties to reorder)

    # screenshots: a desktop window and a phone's width (look at them: figures must show)
    shots = Path(os.environ.get("RSTSWEEP_REPORT_SHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    for name, size in (("desktop", "1280,2600"), ("phone", "390,1600")):
        png = shots / f"report-{name}.png"
        _chromium(f"--screenshot={png}", f"--window-size={size}", url)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 50_000  # a page with figures, not a blank one


def test_report_without_a_sweeps_file_and_a_bad_store(
    cli, demo_store: Path, sweeps_file: Path, tmp_path, monkeypatch
) -> None:
    out = tmp_path / "elsewhere" / "r.html"
    result = cli("report", "--store", demo_store, "--out", out, "--file", tmp_path / "none.yaml")
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"rstsweep: error: {tmp_path / 'none.yaml'}: sweeps file not found (pass --file PATH)"
    )
    # a local sweeps.yaml without the `constant` sweep: that one comes from the cells table
    grids = yaml.safe_load(sweeps_file.read_text(encoding="utf-8"))
    del grids["sweeps"]["constant"]
    (tmp_path / "sweeps.yaml").write_text(yaml.safe_dump(grids), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = cli("report", "--store", demo_store, "--out", out)
    assert result.exit_code == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    assert "constant: cells from the store&#x27;s cells table" in text  # HTML-escaped note
    assert "cells from cells table" in text
    missing = cli("report", "--store", tmp_path / "nothing")
    assert missing.exit_code == 2 and "no result store" in missing.stderr
