"""Evaluate the GitHub Actions expressions our workflows gate steps with, for a given event and ref.

The subset: string literals ('...'), true/false, context properties (``github.ref``, ``env.PUBLISH``),
``==``, ``!=``, ``&&``, ``||``, ``!`` and parentheses. Anything else (functions, other contexts) raises,
so a workflow using more than this fails its test instead of being judged wrongly. ``==``/``!=`` compare
strings case-insensitively, as GitHub does; an env value is the string its expression renders to.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

_TOKENS = re.compile(r"\s*(?:('(?:[^']|'')*')|(&&|\|\||==|!=|!|\(|\))|([A-Za-z_][\w.-]*))")


def _to_python(expression: str) -> str:
    out: list[str] = []
    position = 0
    text = expression.strip()
    while position < len(text):
        match = _TOKENS.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"cannot read {text[position:]!r} in {expression!r}")
        literal, operator, name = match.groups()
        if literal is not None:
            out.append(repr(literal[1:-1].replace("''", "'")))
        elif operator is not None:
            out.append({"&&": " and ", "||": " or ", "!": " not "}.get(operator, f" {operator} "))
        elif name in {"true", "false"}:
            out.append(name.capitalize())
        else:
            out.append("ctx[" + repr(name) + "]")
        position = match.end()
    return "".join(out)


def _string(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _eval(node: ast.AST, ctx: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body, ctx)
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, ctx) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _eval(node.operand, ctx)
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left = _string(_eval(node.left, ctx)).lower()
        right = _string(_eval(node.comparators[0], ctx)).lower()
        if isinstance(node.ops[0], ast.Eq):
            return left == right
        if isinstance(node.ops[0], ast.NotEq):
            return left != right
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bool)):
        return node.value
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == "ctx"
        and isinstance(node.slice, ast.Constant)
    ):
        name = str(node.slice.value)
        if name not in ctx:
            raise KeyError(f"{name}: not a context this evaluator was given")
        return ctx[name]
    raise ValueError(f"unsupported expression {ast.dump(node)}")


def evaluate(expression: str, ctx: Mapping[str, Any]) -> Any:
    """Value of ``expression`` (with or without ``${{ }}``) given flat context values (``github.ref``)."""
    text = expression.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    return _eval(ast.parse(_to_python(text), mode="eval"), ctx)


def step_runs(step: Mapping[str, Any], ctx: Mapping[str, Any]) -> bool:
    """Whether a step's ``if:`` lets it run (no ``if:``: it runs, the previous steps having succeeded)."""
    condition = step.get("if")
    return True if condition is None else bool(evaluate(str(condition), ctx))


def job_context(job: Mapping[str, Any], github: Mapping[str, str]) -> dict[str, Any]:
    """``github.*`` values plus the job's ``env.*`` values that only depend on them (rendered as strings)."""
    ctx: dict[str, Any] = {f"github.{key}": value for key, value in github.items()}
    for key, value in (job.get("env") or {}).items():
        try:
            ctx[f"env.{key}"] = _string(evaluate(str(value), ctx)) if "${{" in str(value) else str(value)
        except KeyError:
            continue  # depends on another context (matrix, needs): unknown here
    return ctx
