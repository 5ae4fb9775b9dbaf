"""Sweep constraints: a small expression language, parsed from a restricted syntax tree, never evaluated
as Python.

A constraint such as `pp * ep <= gpus and schedule == "dualpipe"` is parsed with `ast.parse` and every node
is checked against what the language allows: column names, numbers, strings and true/false, arithmetic
(+ - * / // % **), comparisons (chained too; `in` / `not in` a list of constants), `and` / `or` / `not`
(also `&` `|` `~`), and the functions in FUNCTIONS called with plain arguments. Anything else — attributes,
`@names`, subscripts, other calls, keywords, lambdas, comprehensions — is refused when the sweep is read.
Text and numbers are told apart when the constraint is read (the caller names its text columns): text only
compares with == != and `in`, and with text, so `schedule < 3` or `gpu * 2` is refused before any work.
Evaluation walks the checked tree over numpy arrays, one element per point: numbers are float64 (so
`9 ** 9 ** 9` is an overflow to inf, not a hang, and no Python integer is ever raised to a power), a value
of the wrong type is NaN, and a comparison with NaN is false (the point fails).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Collection, Mapping
from typing import Any, cast

import numpy as np

MAX_CHARS = 1000
MAX_NODES = 400

FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {  # name -> (function, least, most arguments)
    "min": (lambda *a: np.minimum.reduce(np.broadcast_arrays(*a)), 2, 8),
    "max": (lambda *a: np.maximum.reduce(np.broadcast_arrays(*a)), 2, 8),
    "abs": (np.abs, 1, 1),
    "sqrt": (np.sqrt, 1, 1),
    "log2": (np.log2, 1, 1),
    "log10": (np.log10, 1, 1),
    "ceil": (np.ceil, 1, 1),
    "floor": (np.floor, 1, 1),
}
ARITHMETIC: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitAnd: np.logical_and,
    ast.BitOr: np.logical_or,
}
COMPARISONS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
ALLOWED = (
    "column names, numbers, strings, true/false, + - * / // % **, comparisons (in / not in a list), "
    f"and/or/not (& | ~), and the functions {', '.join(FUNCTIONS)}"
)


def _refuse(text: str, what: str) -> ValueError:
    return ValueError(f"constraint {text!r}: {what} is not allowed; use {ALLOWED}")


def parse(text: str, names: Collection[str], texts: Collection[str] = ()) -> ast.Expression:
    """The checked syntax tree of constraint `text` over the columns `names` (`texts`: those holding text);
    a one-line ValueError naming what is not allowed otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"a constraint must be a string, not {text!r}")
    if len(text) > MAX_CHARS:
        raise ValueError(f"a constraint of {len(text):,} characters; the limit is {MAX_CHARS:,}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"constraint {text!r} is not an expression: {exc.msg}") from None
    except ValueError as exc:  # a null byte
        raise ValueError(f"constraint {text!r} is not an expression: {exc}") from None
    except (RecursionError, MemoryError):
        raise ValueError(f"constraint {text!r} is nested too deeply") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise ValueError(f"constraint {text!r} has {len(nodes)} parts; the limit is {MAX_NODES}")
    callees = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
    for node in nodes:
        _check(node, text, names, id(node) in callees)
    _kind(tree.body, text, texts)
    if not _is_verdict(tree.body):
        raise ValueError(f"constraint {text!r} must be a comparison (true or false per point), e.g. pp * ep <= gpus")
    return tree


def _is_verdict(node: ast.AST) -> bool:
    """Whether the top of a constraint yields true or false (not a number or a column)."""
    if isinstance(node, ast.BinOp):
        return isinstance(node.op, ast.BitAnd | ast.BitOr)
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, ast.Not | ast.Invert)
    if isinstance(node, ast.Constant):
        return isinstance(node.value, bool)
    return isinstance(node, ast.Compare | ast.BoolOp)


_STRUCTURE = (ast.Expression, ast.Load, ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Invert)
_NODES = (ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.Compare, ast.Name, ast.Constant, ast.Call, ast.List, ast.Tuple)


def _check(node: ast.AST, text: str, names: Collection[str], is_callee: bool) -> None:
    """Refuse any node outside the language (`is_callee`: the node is the function of a call)."""
    if isinstance(node, (*_STRUCTURE, *ARITHMETIC, *COMPARISONS, ast.In, ast.NotIn)):
        return
    if not isinstance(node, _NODES):
        raise _refuse(text, f"{type(node).__name__.lower()} ({ast.unparse(node)[:40]!r})")
    if isinstance(node, ast.Name) and node.id not in names and node.id not in FUNCTIONS:
        raise ValueError(f"constraint {text!r}: unknown name {node.id!r}; use the sweep's inputs ({', '.join(names)})")
    if isinstance(node, ast.Constant) and not isinstance(node.value, bool | int | float | str):
        raise _refuse(text, f"the constant {node.value!r}")
    if isinstance(node, ast.Call):
        fn = node.func.id if isinstance(node.func, ast.Name) else None
        if fn not in FUNCTIONS or node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise _refuse(text, f"the call {ast.unparse(node)[:40]!r}")
        least, most = FUNCTIONS[fn][1:]
        if not least <= len(node.args) <= most:
            raise ValueError(f"constraint {text!r}: {fn} takes {least} to {most} arguments")
    if isinstance(node, ast.Name) and (node.id in FUNCTIONS) != is_callee:
        what = f"the function name {node.id!r} without a call" if not is_callee else f"calling {node.id!r}"
        raise _refuse(text, what)
    if isinstance(node, ast.List | ast.Tuple) and not all(isinstance(e, ast.Constant) for e in node.elts):
        raise _refuse(text, "a list of anything but constants")


def _kind(node: ast.AST, text: str, texts: Collection[str]) -> str:
    """'text' or 'number' (true/false count as numbers): refuses what cannot mean anything per point
    (arithmetic on text, text ordered or compared with a number), so such a constraint fails when read."""
    if isinstance(node, ast.Constant):
        return "text" if isinstance(node.value, str) else "number"
    if isinstance(node, ast.Name):
        return "text" if node.id in texts else "number"
    if isinstance(node, ast.List | ast.Tuple):
        raise _refuse(text, "a list outside `in`")
    if isinstance(node, ast.Compare):
        _check_comparison(node, text, texts)
        return "number"
    for part in _operands(node):
        if _kind(part, text, texts) == "text":
            raise ValueError(
                f"constraint {text!r}: {ast.unparse(part)[:40]!r} is text; text only compares with == != "
                "or in (e.g. schedule == 'dualpipe')"
            )
    return "number"


def _operands(node: ast.AST) -> list[ast.AST]:
    """What an and/or, a unary or binary operator, or a call computes on (all numbers)."""
    if isinstance(node, ast.BoolOp):
        return list(node.values)
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.BinOp):
        return [node.left, node.right]
    return list(cast(ast.Call, node).args)  # a call: checked in _check


def _check_comparison(node: ast.Compare, text: str, texts: Collection[str]) -> None:
    """Text compares with text and only by == != in; `in` takes a list of one kind and is not chained."""
    left = _kind(node.left, text, texts)
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        if isinstance(op, ast.In | ast.NotIn):
            if not isinstance(right_node, ast.List | ast.Tuple) or len(node.ops) > 1:
                raise _refuse(text, "`in` but against one list of constants (not chained)")
            kinds = {_kind(e, text, texts) for e in right_node.elts}
            if kinds - {left}:
                raise ValueError(f"constraint {text!r}: the list mixes text and numbers against {left}")
            continue
        right = _kind(right_node, text, texts)
        ordered = not isinstance(op, ast.Eq | ast.NotEq)
        if left != right or (ordered and left == "text"):
            what = "ordered" if left == right else "compared with a number"
            raise ValueError(
                f"constraint {text!r}: text {what} ({ast.unparse(node)[:40]!r}); text only compares with "
                "== != or in, with text"
            )
        left = right


def evaluate(tree: ast.Expression, columns: Mapping[str, np.ndarray], rows: int, text: str = "") -> np.ndarray:
    """The constraint's value per point: a boolean array of `rows` elements."""
    with np.errstate(all="ignore"):
        try:
            value = _eval(tree.body, columns, text)
        except (TypeError, ValueError, ArithmeticError) as exc:  # checked when parsed: a backstop
            raise ValueError(f"constraint {text!r} cannot be computed over the inputs: {exc}") from None
    value = np.asarray(value)
    if value.dtype != bool:
        raise ValueError(f"constraint {text!r} must be a comparison (true or false per point)")
    return np.broadcast_to(value, (rows,)).copy()


def _eval(node: ast.AST, columns: Mapping[str, np.ndarray], text: str) -> Any:
    if isinstance(node, ast.Constant):
        return _number(node.value)
    if isinstance(node, ast.Name):
        if node.id not in columns:
            raise ValueError(f"{node.id} is not an input of this sweep's engine")
        return columns[node.id]
    if isinstance(node, ast.BoolOp):
        parts = [_eval(v, columns, text) for v in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        return combine.reduce(np.broadcast_arrays(*parts))
    if isinstance(node, ast.UnaryOp):
        x = _eval(node.operand, columns, text)
        if isinstance(node.op, ast.Not | ast.Invert):
            return np.logical_not(x)
        return -x if isinstance(node.op, ast.USub) else +x
    if isinstance(node, ast.BinOp):
        return ARITHMETIC[type(node.op)](_eval(node.left, columns, text), _eval(node.right, columns, text))
    if isinstance(node, ast.Compare):
        return _compare(node, columns, text)
    if isinstance(node, ast.Call):
        fn = FUNCTIONS[node.func.id][0]  # type: ignore[attr-defined]
        return fn(*(_eval(a, columns, text) for a in node.args))
    raise ValueError(f"{type(node).__name__} outside a comparison")  # a bare list: checked, never reached


def _compare(node: ast.Compare, columns: Mapping[str, np.ndarray], text: str) -> Any:
    """A (chained) comparison; any comparison with a NaN is false, != and not in too (the point fails)."""
    left, result = _eval(node.left, columns, text), True
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        if isinstance(op, ast.In | ast.NotIn):
            found = np.zeros(np.shape(left), bool)
            for option in right_node.elts:  # type: ignore[attr-defined]  # a list of constants: checked when parsed
                found = found | np.asarray(left == _number(option.value), dtype=bool)
            result = result & (found if isinstance(op, ast.In) else ~found) & ~_nan(left)
            continue
        right = _eval(right_node, columns, text)
        result = result & COMPARISONS[type(op)](left, right) & ~(_nan(left) | _nan(right))
        left = right
    return result


def _nan(value: Any) -> Any:
    """Where a number is NaN (text: nowhere)."""
    value = np.asarray(value)
    return np.isnan(value) if value.dtype.kind == "f" else np.zeros(value.shape, bool)


def _number(value: Any) -> Any:
    """A constant as the evaluator computes with it: numbers as float64 (no unbounded integers)."""
    return np.float64(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def names(tree: ast.Expression) -> set[str]:
    """The columns a checked constraint reads."""
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id not in FUNCTIONS}


def columns_of(frame: Any, texts: Collection[str] = ()) -> dict[str, np.ndarray]:
    """A DataFrame's columns as the evaluator takes them: `texts` as objects (str, else None), the rest as
    float64 (a value that is not a number, a point's wrongly typed input, is NaN: it fails every comparison)."""
    return {name: (_texts if name in texts else floats)(frame[name].to_numpy()) for name in frame.columns}


def floats(values: np.ndarray) -> np.ndarray:
    """`values` as float64: a number as itself (too large: +-inf), anything else (text, true/false, None) NaN."""
    if values.dtype.kind in "iufb":
        return values.astype(np.float64)
    return np.array([_float(v) for v in values], dtype=np.float64)


def _float(value: Any) -> float:
    """A number as float64 (an integer too large for it: +-inf), anything else NaN."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        return np.nan
    try:
        return float(value)
    except OverflowError:
        return np.inf if value > 0 else -np.inf


def _texts(values: np.ndarray) -> np.ndarray:
    return np.array([v if isinstance(v, str) else None for v in values], dtype=object)
