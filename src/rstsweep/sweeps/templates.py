"""The template language of sweeps.yaml groups: `"{name}"` refers to a grid axis of the group, and
a filled-in value that is plain arithmetic (`"1 - {b_p}"`, `"{g}/{p}"`) becomes a number.
Arithmetic is evaluated on a tiny AST whitelist (numbers, + - * /), never with eval."""

from __future__ import annotations

import ast
import math
import operator
import string
from collections.abc import Mapping

from rstsweep.errors import PathPart, RstError, yaml_path


def refs(template: str) -> list[str]:
    """The grid names a template refers to (`"constant({a_c})"` -> ["a_c"]); [] if malformed."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name]
    except ValueError:
        return []


def template_of(value: object) -> str | None:
    """`value` (or a schedule helper's `value:`) if it is a template string, else None."""
    if isinstance(value, dict):
        value = value.get("value")
    return value if isinstance(value, str) and refs(value) else None


def format_value(value: object) -> str:
    """A grid value as it is substituted and shown: whole floats without `.0` (`1.0` -> `1`)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return str(value)


def fill(
    value: object, values: Mapping[str, object], where: tuple[PathPart, ...], numeric: bool = True
) -> object:
    """Substitute grid values into a template (`where`: its YAML path, for errors); with `numeric`,
    a result that is arithmetic becomes a number. Non-templates are returned unchanged."""
    if not isinstance(value, str) or not refs(value):
        return value
    try:
        text = value.format(**{k: format_value(v) for k, v in values.items()})
    except (KeyError, IndexError, ValueError) as exc:
        raise RstError(f"{yaml_path(*where)}: bad template {value!r} ({exc})") from None
    if not numeric:
        return text
    number = arith(text)
    return text if number is None else number


_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def arith(text: str) -> float | int | None:
    """`text` as a number if it is a plain arithmetic expression of numbers, else None."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return None

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.operand))
        raise ValueError("not arithmetic")

    try:
        result = ev(tree.body)
    except (ValueError, ZeroDivisionError):
        return None
    if isinstance(result, int):
        return result
    # 1.5/0.1 -> 15.000000000000002: round to 12 significant digits so such values hash as written
    return float(f"{result:.12g}") if math.isfinite(result) else None
