"""Table 2 of the paper: each family's formula, an example instance, closed-form and discrete Δη.

`schedule_rows` gives plain dicts (the analysis reuses them for markdown/csv/latex);
`print_schedule_table` renders them with rich for `rstsweep schedules`, followed by the
closed-loop policies (`policy_rows`) with their parameters.
"""

from __future__ import annotations

from rstsweep.schedules.families import Schedule, format_number, registered_families
from rstsweep.schedules.policies import registered_policies
from rstsweep.schedules.spec import parse


def example_schedules() -> list[Schedule]:
    """One example instance per registered family (constant(0.5), piecewise(a=0, b=0.5), ...)."""
    return [Schedule(fam.name, dict(fam.example)) for fam in registered_families()]


def schedule_rows(steps: int, extra_specs: list[str] | None = None) -> list[dict]:
    """Rows of Table 2 for T = steps: the family examples, then each extra spec (parsed, so a bad
    one raises ScheduleError). Keys: family, formula, spec, closed_form_formula,
    closed_form_extra, expected_extra, steps, extra (True for the user's specs)."""
    schedules = [(s, False) for s in example_schedules()]
    schedules += [(parse(spec), True) for spec in extra_specs or []]
    return [_row(s, steps, extra) for s, extra in schedules]


def _row(schedule: Schedule, steps: int, extra: bool) -> dict:
    return {
        "family": schedule.family,
        "formula": schedule.formula,
        "spec": schedule.spec,
        "closed_form_formula": schedule.closed_form_formula,
        "closed_form_extra": schedule.closed_form_extra,
        "expected_extra": schedule.expected_extra(steps),
        "steps": steps,
        "extra": extra,
    }


def policy_rows() -> list[dict]:
    """One row per registered closed-loop policy: name, rule, parameters ('name in [lo, hi]
    (default x)'), the nominal Δη of its defaults (None when a parameter is required), source."""
    from rstsweep.schedules.policies import Policy

    rows = []
    for kind in registered_policies():
        params = [
            f"{p.name} in {p.range_text}"
            + ("" if p.default is None else f" (default {format_number(p.default)})")
            for p in kind.params
        ]
        required = any(p.default is None for p in kind.params)
        nominal = None if required else Policy(kind.name, {}).closed_form_extra
        rows.append(
            {
                "policy": kind.name,
                "rule": kind.formula,
                "parameters": params,
                "nominal_extra": nominal,
                "reference": kind.reference,
            }
        )
    return rows


def print_schedule_table(steps: int, extra_specs: list[str]) -> None:
    """Print Table 2 (closed-form and discrete Δη for T = steps) to stdout with rich."""
    from rich.console import Console
    from rich.table import Table

    rows = schedule_rows(steps, extra_specs)
    table = Table(title=f"Scheduling functions p(τ), τ = t/T (paper Table 2), T = {steps}")
    table.add_column("family", no_wrap=True)
    table.add_column("p(τ)")
    table.add_column("example", no_wrap=True)
    table.add_column("Δη closed form")
    table.add_column(f"Δη discrete (T={steps})", justify="right", no_wrap=True)
    for row, following in zip(rows, [*rows[1:], None], strict=True):
        closed = f"{row['closed_form_formula']} = " if row["closed_form_formula"] else ""
        table.add_row(
            row["family"],
            row["formula"],
            row["spec"],
            f"{closed}{row['closed_form_extra']:.4f}",
            f"{row['expected_extra']:.4f}",
            # a rule between the paper's families and the user's extra specs
            end_section=following is not None and following["extra"] and not row["extra"],
        )
    # Wide enough that the formulas do not wrap when stdout is a pipe (rich defaults to 80).
    console = Console(width=max(110, Console().width))
    console.print(table)
    policies = Table(
        title="Closed-loop policies: p_t decided from the lagged first-pass ‖g‖² (X_t = U_t < p_t)"
    )
    for column in ("policy", "rule", "parameters", "nominal Δη", "reference"):
        policies.add_column(column, no_wrap=column == "policy")
    for row in policy_rows():
        nominal = "= d" if row["nominal_extra"] is None else f"{row['nominal_extra']:.4f}"
        policies.add_row(
            row["policy"], row["rule"], "\n".join(row["parameters"]), nominal, row["reference"]
        )
    console.print(policies)
