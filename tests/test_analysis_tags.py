"""Figures and tables find their sweeps by the sweeps.yaml tags stored with the cells: a new sweep
tagged "Fig. 1" is drawn with no code change, the Fig. 2 group is the stored group number, and a
store written before the tag columns existed still gets its figures from the shipped sweeps.yaml."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rstsweep.analysis.figures import make_figures
from rstsweep.analysis.figures_delta import figure1
from rstsweep.analysis.results import load
from rstsweep.analysis.tables import make_tables
from rstsweep.analysis.tags import shipped_sweeps_file, sweep_tags
from rstsweep.sweeps import load_sweeps
from rstsweep.testing.synthetic import grid_cells, small_store, write_synthetic_store

SWEEPS_FILE = Path(__file__).resolve().parents[1] / "sweeps.yaml"

NEW_SWEEP = """
profiles:
  tiny: {{seeds: [0, 1], models: [fastcnn], datasets: [fashion-mnist], overrides: {{epochs: 2}}}}
sweeps:
  fine-constant:
    {tag}
    groups:
      sgd: {{algorithm: sgd, label: SGD, x: 0}}
      sam: {{algorithm: sam, schedule: "constant(1)", label: SAM, x: 1}}
      fine:
        grid: {{a_c: [0.25, 0.75]}}
        schedule: "constant({{a_c}})"
        label: "a_c={{a_c}}"
  grouped:
    table: "Table 5"
    groups:
      late: {{schedule: {{piecewise_group: 1, value: 0.5}}, label: late}}
"""


def _sweeps_file(tmp_path: Path, tag: str) -> Path:
    path = tmp_path / "sweeps.yaml"
    path.write_text(NEW_SWEEP.format(tag=tag), encoding="utf-8")
    return path


def test_cells_table_records_the_tags_and_group_numbers(tmp_path):
    small_store(tmp_path, SWEEPS_FILE, sweeps=["piecewise-3", "summary"], seeds=1)
    cells = pd.read_parquet(tmp_path / "cells")
    by = cells.set_index(["sweep", "group"]).sort_index()
    assert set(by.loc[("piecewise-3", "piecewise-3"), "figure"]) == {"Fig. 2"}
    assert set(by.loc[("piecewise-3", "piecewise-3"), "group_index"]) == {3}
    assert by.loc[("piecewise-3", "sgd"), "group_index"].isna().all()  # endpoints: no group
    # an included group keeps its number; the cell feeds the including sweep's figure
    assert set(by.loc[("summary", "linear-2"), "group_index"]) == {2}
    assert set(by.loc[("summary", "linear-2"), "figure"]) == {"Fig. 3"}
    assert cells["table"].isna().all()


def test_a_new_sweep_tagged_fig1_is_drawn(tmp_path):
    path = _sweeps_file(tmp_path, 'figure: "Fig. 1"')
    write_synthetic_store(tmp_path / "store", grid_cells(path, "tiny"), steps_per_epoch=10)
    res = load(tmp_path / "store")
    assert res.tagged(figure="Fig. 1") == ["fine-constant"]
    fig = figure1(res, note=lambda _: None)
    assert fig is not None
    error_panel = next(ax for ax in fig.axes if ax.get_title().startswith("(C)"))
    xs = sorted(error_panel.lines[0].get_xdata())  # the mean error line over Δη
    assert xs == pytest.approx([0.0, 0.25, 0.75, 1.0])
    # the same sweep without the tag is not Figure 1's
    path = _sweeps_file(tmp_path, 'description: "untagged"')
    write_synthetic_store(tmp_path / "plain", grid_cells(path, "tiny"), steps_per_epoch=10)
    notes: list[str] = []
    assert figure1(load(tmp_path / "plain"), note=notes.append) is None
    assert notes == ["figure 1 skipped: no sweep tagged 'Fig. 1' in store"]


def test_table_tag_and_group_number_from_a_new_file(tmp_path):
    path = _sweeps_file(tmp_path, 'figure: "Fig. 1"')
    cells = grid_cells(path, "tiny")
    late = [c for c in cells if c.sweep == "grouped"]
    assert {(c.table, c.group_index, c.figure) for c in late} == {("Table 5", 1, None)}
    write_synthetic_store(tmp_path / "store", cells, steps_per_epoch=10)
    res = load(tmp_path / "store")
    assert set(res.cases.loc[res.cases["sweep"] == "grouped", "gkey"]) == {"piecewise-1"}
    tables = make_tables(tmp_path / "store", "md")
    assert "table5_trigonometric" in tables and "sweep_grouped" not in tables
    assert "| late |" in tables["table5_trigonometric"]


@pytest.mark.parametrize(
    ("sweep", "group", "key"),
    [
        ("piecewise-1", "piecewise-1", "piecewise-1"),
        ("summary", "linear-2", "linear-2"),
        ("summary", "piecewise-3", "piecewise-3"),
        ("piecewise-2", "sgd", None),
        ("constant", "constant", None),
        ("summary", "sam", None),
    ],
)
def test_fig2_group_key_is_family_and_stored_number(group_store, sweep, group, key):
    res = load(group_store)
    keys = res.cases.loc[(res.cases["sweep"] == sweep) & (res.cases["group"] == group), "gkey"]
    assert len(keys) and set(keys) == {key}


@pytest.fixture(scope="module")
def group_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("groups")
    sweeps = ["constant", "piecewise-1", "piecewise-2", "summary"]
    small_store(
        root, SWEEPS_FILE, sweeps=sweeps, models=["wrn-28-10"], datasets=["cifar10"], seeds=1
    )
    return root


def _strip_tag_columns(store: Path) -> None:
    """Rewrite the cells table as a store written before the tag columns existed."""
    for part in (store / "cells").glob("part-*.parquet"):
        table = pq.read_table(part)
        old = table.select(["sweep", "group", "label", "x", "cell_id", "profile"])
        assert old.schema.field("cell_id").type == pa.string()
        pq.write_table(old, part)


def test_old_store_gets_its_tags_from_the_shipped_sweeps_file(tmp_path):
    assert shipped_sweeps_file() is not None
    sweeps = ["constant", "piecewise-1", "linear-2", "trigonometric"]
    for name in ("new", "old"):
        small_store(tmp_path / name, SWEEPS_FILE, sweeps=sweeps, datasets=["cifar10"], seeds=1)
    _strip_tag_columns(tmp_path / "old")
    part = next((tmp_path / "old" / "cells").glob("*.parquet"))
    assert "figure" not in pq.read_table(part).schema.names
    new, old = load(tmp_path / "new"), load(tmp_path / "old")
    cols = ["sweep", "group", "cell_id", "figure", "table", "group_index"]
    pd.testing.assert_frame_equal(
        old.members[cols].sort_values(cols[:3]).reset_index(drop=True),
        new.members[cols].sort_values(cols[:3]).reset_index(drop=True),
    )
    names = [p.name for p in make_figures(tmp_path / "old", tmp_path / "figs", note=print)]
    assert names[:4] == ["figure1.png", "figure2.png", "figure3.png", "figure4.png"]
    assert make_tables(tmp_path / "old", "csv") == make_tables(tmp_path / "new", "csv")


def test_trials_without_cells_rows_are_tagged_too(tmp_path):
    small_store(tmp_path, SWEEPS_FILE, sweeps=["trigonometric"], seeds=1)
    for part in (tmp_path / "cells").glob("*.parquet"):
        part.unlink()  # a trial recorded before its sweep's cells
    assert load(tmp_path).tagged(figure="Fig. 4") == ["trigonometric"]


def test_sweep_tags_of_the_shipped_file():
    tags = sweep_tags(load_sweeps(SWEEPS_FILE))
    assert tags.of("constant", "constant") == ("Fig. 1", None, None)
    assert tags.of("trigonometric", "trigonometric") == ("Fig. 4", "Table 5", None)
    assert tags.of("cutout", "piecewise-1") == (None, "Tables 6-9", 1)
    assert tags.of("piecewise-3", "piecewise-3") == ("Fig. 2", None, 3)
