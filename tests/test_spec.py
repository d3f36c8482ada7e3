"""sweeps.yaml and its expansion: every sweep x profile, hand-counted cells, exact errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from processes import cli_process
from rstsweep import sweeps as spec_mod
from rstsweep.errors import RstError
from rstsweep.schedules import parse
from rstsweep.sweeps import expand, expand_all, load_sweeps, parse_sweeps
from rstsweep.sweeps.templates import arith

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = ROOT / "sweeps.yaml"
TEXT = SWEEPS.read_text()
ALL_SWEEPS = {
    "baselines", "constant", "piecewise-1", "piecewise-2", "piecewise-3", "linear-1", "linear-2",
    "summary", "trigonometric", "p-gamma", "g-rst", "imagenet", "cutout", "other-models",
    "variants", "mixing", "late-sam", "policies",
}  # fmt: skip


@pytest.fixture(scope="module")
def sweeps():
    return load_sweeps(SWEEPS)


def test_every_design_grid_is_declared_and_expands_under_every_profile(sweeps) -> None:
    assert set(sweeps.sweeps) == ALL_SWEEPS
    assert {"paper", "demo", "ci"} <= set(sweeps.profiles)
    for profile in sweeps.profiles:
        for name, cells in expand_all(sweeps, profile).items():
            assert cells, (profile, name)
            assert len({c.cell_id for c in cells}) == len(cells)


@pytest.mark.parametrize(
    ("sweep", "profile", "count"),
    [
        (
            "constant",
            "paper",
            (9 + 2) * 2 * 2 * 5,
        ),  # (a_c grid + SGD + SAM) x models x datasets x seeds
        ("piecewise-1", "paper", (9 + 2) * 2 * 2 * 5),
        ("summary", "paper", (2 + 6 * 9) * 1 * 2 * 5),  # WRN only; SGD/SAM shared by all six
        ("trigonometric", "paper", (4 + 2) * 1 * 2 * 5),
        ("p-gamma", "paper", 5 * 11 * 1 * 2 * 5),
        ("g-rst", "paper", 3 * 3 * 2 * 5),  # SGD, SAM, G-RST x (R18, WRN, ViT)
        ("imagenet", "paper", 3 * 2 * 1 * 3),  # 3 seeds only
        ("cutout", "paper", (2 + 9 + 9 + 9 + 4) * 1 * 2 * 5),
        ("variants", "paper", (2 + 2 + 1 + 2 + 1) * 2 * 2 * 5),
        ("mixing", "paper", (2 + 3 * 3) * 2 * 2 * 5),
        ("constant", "ci", 11),
        # AE-SAM + budget(0.3, 0.5) + constant(0.3, 0.5) + SGD + SAM, x models x datasets x seeds
        ("policies", "paper", 7 * 2 * 2 * 5),
        ("policies", "demo", 7 * 3),
        ("late-sam", "paper", (2 + 2) * 2 * 2 * 5),
        ("g-rst", "ci", 3),  # three models collapse onto fastcnn: the cells coincide
    ],
)
def test_cell_counts_by_hand(sweeps, sweep: str, profile: str, count: int) -> None:
    assert len(expand(sweeps, sweep, profile)) == count


def test_demo_profile_collapses_to_one_setting_times_its_seeds(sweeps) -> None:
    seeds = sweeps.profiles["demo"].seeds
    assert len(expand(sweeps, "constant", "demo")) == (9 + 2) * len(seeds)


def test_paper_setting_is_resolved(sweeps) -> None:
    cells = expand(sweeps, "constant", "paper")
    for cell in cells:
        c = cell.config
        assert (c.epochs, c.batch_size, c.lr, c.lr_schedule) == (200, 256, 0.1, "cosine")
        assert (c.optimizer, c.momentum, c.nesterov, c.weight_decay) == ("sgd", 0.9, True, 1e-3)
        assert (c.grad_clip, c.augment, c.label_smoothing) == (5.0, "basic", 0.0)
        assert c.rho == {"cifar10": 0.05, "cifar100": 0.1}[c.dataset]
    assert {c.config.model for c in cells} == {"resnet18", "wrn-28-10"}
    assert {c.config.seed for c in cells} == {0, 1, 2, 3, 4}
    # seed-major order: every seed-0 cell comes before any seed-1 cell
    seeds = [c.config.seed for c in cells]
    assert seeds == sorted(seeds)


def test_x_is_the_expected_extra_passes_where_the_paper_plots_against_it(sweeps) -> None:
    for sweep in ("constant", "piecewise-1", "piecewise-2", "linear-1"):
        for cell in expand(sweeps, sweep, "ci"):
            closed = parse(cell.config.schedule).closed_form_extra
            assert cell.x == pytest.approx(closed, abs=1e-12), (sweep, cell.label)
    by_label = {c.label: c for c in expand(sweeps, "piecewise-1", "ci")}
    assert by_label["b_p=0.3"].config.schedule == "piecewise(a=0, b=0.3)"
    assert by_label["b_p=0.3"].x == pytest.approx(0.7)
    assert by_label["SGD"].config.algorithm == "sgd" and by_label["SGD"].x == 0
    linear2 = {c.label: c.config.schedule for c in expand(sweeps, "linear-2", "ci")}
    assert linear2["b_l=0.1"] == "linear(a=0.8, b=0.1)"  # through (0, 0.1) and (1/2, 1/2)


def test_same_cell_has_the_same_id_in_every_sweep(sweeps) -> None:
    constant = {c.cell_id: c for c in expand(sweeps, "constant", "paper")}
    summary = {c.cell_id: c for c in expand(sweeps, "summary", "paper")}
    shared = set(constant) & set(summary)
    wrn_constant = {i for i, c in constant.items() if c.config.model == "wrn-28-10"}
    assert shared == wrn_constant and len(shared) == 11 * 2 * 5
    ci_constant = {c.cell_id for c in expand(sweeps, "constant", "ci")}
    ci_baselines = {c.cell_id for c in expand(sweeps, "baselines", "ci")}
    assert ci_baselines <= ci_constant


def test_groups_resolve_special_fields(sweeps) -> None:
    pg = expand(sweeps, "p-gamma", "paper")
    for cell in pg:
        p = parse(cell.config.schedule).param_a
        assert cell.config.algorithm == "gnr"
        assert cell.config.alpha == pytest.approx(cell.x / p, rel=1e-11)  # α = (γ/ρ)/p, 12 digits
    assert {round(c.config.alpha, 9) for c in pg} >= {15.0, 5.0, 1.0}
    variants = {(c.label, c.config.dataset): c.config for c in expand(sweeps, "variants", "paper")}
    assert variants[("ASAM p=1", "cifar10")].rho == pytest.approx(0.5)  # 10 x SAM's 0.05
    assert variants[("ASAM p=1", "cifar100")].rho == pytest.approx(1.0)
    assert variants[("GSAM G-RST p=0.5", "cifar10")].alpha == 2.0
    grst = expand(sweeps, "g-rst", "paper")
    vit = [c.config for c in grst if c.config.model == "vit-s16"]
    assert vit and all(c.optimizer == "adam" for c in vit)
    assert all(c.config.optimizer == "sgd" for c in grst if c.config.model != "vit-s16")
    other = expand(sweeps, "other-models", "paper")
    # Table 11 gives 300 epochs for ViT-S16 only; VGG16-BN keeps the CNN setting (200)
    assert {(c.config.model, c.config.epochs) for c in other} == {
        ("vgg16-bn", 200),
        ("vit-s16", 300),
    }
    vit_grst = {
        (c.config.epochs, c.config.mixup_alpha) for c in grst if c.config.model == "vit-s16"
    }
    assert vit_grst == {(1200, 1.0)}  # Table 3's ViT: 1200 epochs with mixup
    assert all(c.warmup_sgd for c in vit)  # the authors' warm-up takes SGD steps
    authors = expand(sweeps, "g-rst", "authors")
    assert all(
        c.config.weight_decay_in_loss
        and c.config.norm_perturbations
        and c.config.base_grad_clip == 2.0
        for c in authors
    )
    paper_ids = {
        c.config.model_copy(
            update=dict(weight_decay_in_loss=True, norm_perturbations=True, base_grad_clip=2.0)
        ).cell_id()
        for c in grst
    }
    assert paper_ids == {c.cell_id for c in authors}  # authors = paper + exactly the three switches
    demo_epochs = sweeps.profiles["demo"].overrides["epochs"]
    assert {c.config.epochs for c in expand(sweeps, "other-models", "demo")} == {demo_epochs}
    cutout = expand(sweeps, "cutout", "ci")
    assert {c.config.augment for c in cutout} == {"cutout"}
    imagenet = expand(sweeps, "imagenet", "paper")
    assert {c.config.epochs for c in imagenet} == {100}
    assert {c.config.seed for c in imagenet} == {0, 1, 2}


def test_small_profiles_are_small(sweeps) -> None:
    for cell in expand(sweeps, "constant", "ci"):
        c = cell.config
        assert (c.model, c.dataset, c.epochs, c.train_subset, c.test_subset) == (
            "fastcnn", "fashion-mnist", 1, 256, 256,
        )  # fmt: skip
    demo = expand(sweeps, "constant", "demo")
    assert {(c.config.model, c.config.dataset) for c in demo} == {("fastcnn", "fashion-mnist")}
    assert {c.group for c in demo} == {"sgd", "sam", "constant"}


def test_known_model_and_dataset_names_match_the_trainers() -> None:
    """spec.py validates names with the trainers' own torch-free catalogue, and the torch modules
    build exactly those names."""
    from rstsweep.core import catalog
    from rstsweep.trainers import data, models

    assert models.MODEL_NAMES is catalog.MODEL_NAMES and data.DATASETS is catalog.DATASETS
    for name in catalog.MODEL_NAMES:
        assert catalog.is_known_model(name.replace("wrn-D-K", "wrn-28-10")), name
    assert not catalog.is_known_model("resnet19") and not catalog.is_known_model("wrn-28")
    assert spec_mod.DATASETS is catalog.DATASETS


# ----------------------------------------------------------------------------- errors

MINI = """
profiles:
  ci: {seeds: [0], models: [fastcnn], datasets: [fashion-mnist], config: {epochs: 1}}
sweeps:
  s:
    groups:
      g:
        grid: {a_c: [0.1, 0.5]}
        schedule: "constant({a_c})"
"""


def _error(text: str, sweep: str = "s", profile: str = "ci") -> str:
    with pytest.raises(RstError) as info:
        expand(parse_sweeps(text), sweep, profile)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("[0.1, 0.5]", "[0.1, 0.5, 1.2]", "sweeps.s.groups.g.grid.a_c[2]: 1.2 is not in [0, 1]"),
        (
            'schedule: "constant({a_c})"',
            "schedule: {piecewise_group: 1, value: '{a_c}'}",
            None,  # valid
        ),
        (
            'schedule: "constant({a_c})"',
            'schedule: "constant({b})"',
            "sweeps.s.groups.g.schedule: {b} is not a grid name (grid: a_c)",
        ),
        (
            "        grid:",
            "        gird: 1\n        grid:",
            "sweeps.s.groups.g.gird: unknown key (did you mean 'grid'? group keys: "
            "description, grid, schedule, label, x, rho_scale, or a CellConfig field)",
        ),
        ("  s:\n", "  s:\n    figur: x\n", None),  # checked separately below (known list)
        ("seeds: [0]", "seeds: [zero]", "profiles.ci.seeds[0]: 'zero': Input should be a valid "
         "integer, unable to parse string as an integer"),
        ("config: {epochs: 1}", "config: {epochs: -1}",
         "profiles.ci.config.epochs: -1: Input should be greater than or equal to 1"),
        ("config: {epochs: 1}", "config: {epoch: 1}",
         "profiles.ci.config.epoch: unknown key (did you mean 'epochs'? not a CellConfig field)"),
        ("models: [fastcnn]", "models: [resnet19]",
         "profiles.ci.models[0]: unknown model 'resnet19' (known: fastcnn, resnet18, wrn-D-K, "
         "vgg16-bn, vit-s16, ...)"),
        ('schedule: "constant({a_c})"', 'schedule: "constant({a_c})"\n        lr: "-{a_c}"',
         "sweeps.s.groups.g.grid.a_c[0]: 0.1: Input should be greater than 0"),
        ('schedule: "constant({a_c})"', 'schedule: "nosuch"',
         "sweeps.s.groups.g.schedule: unknown schedule family 'nosuch' (known: constant, "
         "piecewise, linear, cos1, cos2, sin1, sin2, aesam, budget) (grid point a_c=0.1)"),
        ("  s:\n", "  s:\n    include: [t]\n",
         "sweeps.s.include[0]: unknown sweep 't' (known: s)"),
    ],
)  # fmt: skip
def test_bad_yaml_gives_one_exact_line(old: str, new: str, message: str | None) -> None:
    assert old in MINI
    text = MINI.replace(old, new, 1)
    if message is None:
        if "figur" in new:
            with pytest.raises(RstError, match=r"^sweeps\.s\.figur: unknown key \(did you mean"):
                parse_sweeps(text)
        else:
            assert len(expand(parse_sweeps(text), "s", "ci")) == 2
        return
    assert _error(text) == message


def test_the_design_example_message_on_the_real_file() -> None:
    text = TEXT.replace("grid: {a_c: [0.1, 0.2, 0.3, 0.4,", "grid: {a_c: [0.1, 0.2, 0.3, 1.2,", 1)
    assert text != TEXT
    assert _error(text, "constant", "demo") == (
        "sweeps.constant.groups.constant.grid.a_c[3]: 1.2 is not in [0, 1]"
    )
    helper = TEXT.replace("{b_p: [0.1, 0.2,", "{b_p: [0.1, 1.5,", 1)
    assert _error(helper, "piecewise-1", "ci") == (
        "sweeps.piecewise-1.groups.piecewise-1.grid.b_p[1]: 1.5 is not in [0, 1]"
    )


def test_unknown_sweep_profile_file_and_invalid_yaml(tmp_path: Path, sweeps) -> None:
    with pytest.raises(RstError, match=r"^unknown sweep 'nope' \(known: baselines, constant, "):
        expand(sweeps, "nope", "ci")
    with pytest.raises(
        RstError, match=r"^unknown profile 'nope' \(known: paper, authors, demo, ci, ci-imagenet\)$"
    ):
        expand(sweeps, "constant", "nope")
    with pytest.raises(RstError, match=r"missing\.yaml: sweeps file not found"):
        load_sweeps(tmp_path / "missing.yaml")
    with pytest.raises(RstError, match=r"^x\.yaml: invalid YAML at line 2, column 5: expected"):
        parse_sweeps("a: [1,\nb: 2", source="x.yaml")
    with pytest.raises(RstError, match=r"^profiles: required key is missing$"):
        parse_sweeps("sweeps: {}")


def test_cycles_and_arithmetic() -> None:
    cyc = MINI + "  t: {include: [u]}\n  u: {include: [t]}\n"
    with pytest.raises(RstError, match=r"include cycle t -> u -> t"):
        parse_sweeps(cyc)
    assert arith("1 - 0.3") == pytest.approx(0.7)
    assert arith("1.5/0.1") == 15.0  # rounded to 12 significant digits
    assert arith("cos1") is None and arith("__import__('os')") is None


# ----------------------------------------------------------------------------- through the CLI


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_cli_bad_input_exits_2_with_one_line_and_store_untouched(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli_main,
    make_cell,
    make_result,
) -> None:
    from rstsweep.store.store import Store

    store_dir = tmp_path / "store"
    cell = make_cell()
    Store(store_dir).write_result(cell, make_result(cell), "ci")
    before = _snapshot(store_dir)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        TEXT.replace("grid: {a_c: [0.1, 0.2, 0.3, 0.4,", "grid: {a_c: [0.1, 0.2, 0.3, 1.2,")
    )
    cases = [
        (("plan", "constant", "-f", str(bad), "-s", str(store_dir)),
         "rstsweep: error: sweeps.constant.groups.constant.grid.a_c[3]: 1.2 is not in [0, 1]"),
        (("plan", "nope", "-f", str(SWEEPS), "-s", str(store_dir)),
         "rstsweep: error: unknown sweep 'nope' (known: "),
        (("plan", "constant", "-p", "nope", "-f", str(SWEEPS)),
         "rstsweep: error: unknown profile 'nope' (known: paper, authors, demo, ci, ci-imagenet)"),
        (("status", "constant", "-f", str(bad), "-p", "ci", "-s", str(store_dir)),
         "rstsweep: error: sweeps.constant.groups.constant.grid.a_c[3]: 1.2 is not in [0, 1]"),
        (("plan", "constant", "-f", str(tmp_path / "missing.yaml")),
         "rstsweep: error: "),
    ]  # fmt: skip
    # the first two as real processes, the rest in-process through the same entry point (faster)
    for i, (args, expected) in enumerate(cases):
        if i < 2:
            wide = {**os.environ, "COLUMNS": "120"}
            proc = cli_process(*args, cwd=tmp_path, timeout=60, env=wide)
            code, out, err = proc.returncode, proc.stdout, proc.stderr
        else:  # from where the sweeps file is (or the repository)
            monkeypatch.chdir(Path(args[args.index("-f") + 1]).parent if "-f" in args else ROOT)
            code, out, err = cli_main(*args)
        assert code == 2, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(expected), (args, err)
        assert out == ""
    assert _snapshot(store_dir) == before
    assert not (tmp_path / "results").exists()


def test_cells_carry_figure_table_and_group_index(sweeps) -> None:
    by_group = {(c.sweep, c.group): c for c in expand(sweeps, "piecewise-2", "ci")}
    fig2 = by_group[("piecewise-2", "piecewise-2")]
    assert (fig2.figure, fig2.table, fig2.group_index) == ("Fig. 2", None, 2)
    sgd = by_group[("piecewise-2", "sgd")]  # included from baselines: the including sweep's tags
    assert (sgd.figure, sgd.group_index) == ("Fig. 2", None)
    for sweep, number in (("piecewise-1", 1), ("piecewise-3", 3), ("linear-1", 1), ("linear-2", 2)):
        indices = {c.group_index for c in expand(sweeps, sweep, "ci") if c.group == sweep}
        assert indices == {number}, sweep
    trig = expand(sweeps, "trigonometric", "ci")
    assert {(c.figure, c.table) for c in trig} == {("Fig. 4", "Table 5")}
    assert {c.group_index for c in expand(sweeps, "constant", "ci")} == {None}
    assert {c.table for c in expand(sweeps, "baselines", "ci")} == {"Table 1"}
