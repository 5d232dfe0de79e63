"""Safe, vectorised screen expressions: ``rsi_14 < 30 and close > sma_200``.

Why not ``eval``: a screen expression comes from a user (CLI, HTTP); it must never run
code. The expression is parsed with :mod:`ast` and only an allow-list of nodes is accepted
(comparisons, ``and``/``or``/``not``, ``+ - * /``, unary minus, numbers and field names).
Evaluation is vectorised over a snapshot frame: one pandas operation per node, whatever
the size of the universe. NaN compares as false, so a symbol without enough history for
an indicator is simply not selected.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from tickvault.errors import InvalidInput

__all__ = ["expression_fields", "evaluate"]

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
}
MAX_EXPRESSION = 500


def _parse(expression: str) -> ast.Expression:
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidInput("screen expression is empty")
    if len(expression) > MAX_EXPRESSION:
        raise InvalidInput(f"screen expression is longer than {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise InvalidInput(f"cannot parse screen expression {expression!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        allowed = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
                   ast.Compare, ast.BinOp, ast.Name, ast.Load, ast.Constant, *_COMPARE, *_BINARY)
        if not isinstance(node, allowed):
            raise InvalidInput(f"screen expressions may only compare fields and numbers; "
                               f"{type(node).__name__} is not allowed")
        if isinstance(node, ast.Constant) and (isinstance(node.value, bool) or
                                               not isinstance(node.value, int | float)):
            raise InvalidInput(f"only numbers are allowed as constants, got {node.value!r}")
    return tree


def expression_fields(expression: str) -> list[str]:
    """The field names an expression refers to, in order of first use.

    Raises
    ------
    InvalidInput
        If the expression is not a valid screen expression.
    """
    seen: dict[str, None] = {}
    for node in ast.walk(_parse(expression)):
        if isinstance(node, ast.Name):
            seen.setdefault(node.id, None)
    return list(seen)


def evaluate(expression: str, frame: pd.DataFrame, known: Iterable[str] | None = None) -> pd.Series:
    """Evaluate ``expression`` over ``frame`` (one row per symbol) to a boolean mask.

    Raises
    ------
    InvalidInput
        Unknown field (the message lists the known ones) or a disallowed construct.
    """
    tree = _parse(expression)
    fields = set(frame.columns) if known is None else set(known) | set(frame.columns)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in frame.columns:
            shown = ", ".join(sorted(str(f) for f in fields)[:40])
            raise InvalidInput(f"unknown field {node.id!r} in screen expression; known fields: {shown}")
    result = _eval(tree.body, frame)
    if not isinstance(result, pd.Series) or result.dtype != bool:
        if isinstance(result, pd.Series):
            raise InvalidInput("a screen expression must be a condition (e.g. rsi_14 < 30), not a value")
        return pd.Series(bool(result), index=frame.index)
    return result


def _eval(node: ast.AST, frame: pd.DataFrame) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return pd.to_numeric(frame[node.id], errors="coerce").astype(float)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, frame)
        if isinstance(node.op, ast.Not):
            return ~_as_bool(value, frame)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, frame), _eval(node.right, frame))
    if isinstance(node, ast.BoolOp):
        parts = [_as_bool(_eval(v, frame), frame) for v in node.values]
        out = parts[0]
        for p in parts[1:]:
            out = (out & p) if isinstance(node.op, ast.And) else (out | p)
        return out
    if isinstance(node, ast.Compare):
        left = _eval(node.left, frame)
        mask = pd.Series(True, index=frame.index)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, frame)
            mask &= _as_bool(_COMPARE[type(op)](left, right), frame)
            left = right
        return mask
    if isinstance(node, ast.Expression):  # pragma: no cover - unwrapped by the caller
        return _eval(node.body, frame)
    raise InvalidInput(f"{type(node).__name__} is not allowed in screen expressions")  # pragma: no cover


def _as_bool(value: Any, frame: pd.DataFrame) -> pd.Series:
    if isinstance(value, pd.Series):
        if value.dtype == bool:
            return value
        raise InvalidInput("'and', 'or' and 'not' combine conditions, not values")
    return pd.Series(bool(value), index=frame.index)
