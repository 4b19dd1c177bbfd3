"""Goal expressions: tokenizing and parsing ``"0.5*{F}{C} - {FC} + 0.1*H_res"``, number lists
and number formatting, with error messages that mark the offending term."""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from .atoms import H_RES, _canonical, _valid_names


class _Token(NamedTuple):
    kind: str
    text: str
    start: int
    end: int


_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_TOKEN_RE = re.compile(
    rf"(?P<ws>\s+)|(?P<num>{_NUM})|(?P<atom>(?:\{{[^{{}}]*\}})+)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<sign>[+\-\u2212])|(?P<star>\*)"
)
_PRESET_LIKE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")


def _number_list(text: str) -> list[float] | None:
    """``[-0.2, 0.1, ...]``, ``-0.2 0.1 ...`` or ``-0.2,0.1,...`` as floats; ``None`` if not numbers."""
    body = text.strip()
    if len(body) >= 2 and (body[0], body[-1]) in (("[", "]"), ("(", ")")):
        body = body[1:-1]
    tokens = [t for t in re.split(r"[\s,]+", body.replace("\u2212", "-")) if t]
    if not tokens:
        return None
    try:
        return [float(t) for t in tokens]
    except ValueError:
        return None


def _expression_error(
    expression: str, start: int, end: int, message: str, hint: str = "", detail: str = ""
) -> ValueError:
    """A ``ValueError`` quoting the expression with a ``^^^`` marker under ``[start, end)``.

    The text reads ``<message> at column <start + 1> [(<detail>)]``, the expression, the
    marker line and an optional ``hint`` line.
    """
    shown = re.sub(r"\s", " ", expression)
    marker = " " * start + "^" * max(1, end - start)
    where = f" at column {start + 1}" + (f" ({detail})" if detail else "")
    text = f"{message}{where} of the goal expression:\n    {shown}\n    {marker}"
    return ValueError(text + (f"\n{hint}" if hint else ""))


def _tokenize(expression: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(expression):
        match = _TOKEN_RE.match(expression, pos)
        if match is None:
            char = expression[pos]
            what = {"{": "unbalanced '{'", "}": "unbalanced '}'"}.get(char, f"unexpected character {char!r}")
            raise _expression_error(
                expression, pos, pos + 1, what,
                "terms look like 0.5*{F}{C}, -{FC} or 0.1*H_res, joined by + or -",
            )  # fmt: skip
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), match.start(), match.end()))
        pos = match.end()
    return tokens


def _parse_terms(expression: str, labels: tuple[str, ...]) -> dict[str, float]:
    """Parse ``expression`` into canonical name -> summed coefficient (zeros kept)."""
    tokens = _tokenize(expression)
    if not tokens:
        raise ValueError(
            f"empty goal expression {expression!r}: give terms such as "
            f"'{{{labels[0]}}}{{{labels[1]}}} - 0.5*{{{labels[0]}}} + 0.1*{H_RES}'"
        )
    sums: dict[str, float] = {}
    i = 0
    while i < len(tokens):
        start = tokens[i].start
        sign = 1.0
        if tokens[i].kind == "sign":
            sign = 1.0 if tokens[i].text == "+" else -1.0
            i += 1
        elif sums:
            tok = tokens[i]
            raise _expression_error(
                expression, tok.start, tok.end, f"expected '+' or '-' before {tok.text!r}"
            )
        coefficient = 1.0
        if i < len(tokens) and tokens[i].kind == "num":
            coefficient = float(tokens[i].text)
            if not math.isfinite(coefficient):
                tok = tokens[i]
                raise _expression_error(
                    expression, tok.start, tok.end, f"coefficient {tok.text!r} is not finite"
                )
            i += 1
            if i < len(tokens) and tokens[i].kind == "star":
                i += 1
        elif i < len(tokens) and tokens[i].kind == "star":
            tok = tokens[i]
            raise _expression_error(expression, tok.start, tok.end, "'*' without a coefficient before it")
        if i >= len(tokens):
            end = tokens[-1].end
            raise _expression_error(
                expression, start, end,
                f"incomplete term {expression[start:end]!r}: expected an atom name such as "
                f"{{{labels[0]}}}{{{labels[1]}}} or {H_RES}",
            )  # fmt: skip
        tok = tokens[i]
        if tok.kind == "atom":
            try:
                name = _canonical(tok.text, labels)
            except ValueError as err:
                raise _expression_error(
                    expression, tok.start, tok.end, f"unknown atom {tok.text!r}",
                    hint=_valid_names(labels), detail=str(err),
                ) from None  # fmt: skip
        elif tok.kind == "name":
            if tok.text != H_RES:
                raise _expression_error(
                    expression, tok.start, tok.end, f"unknown name {tok.text!r}",
                    f"{_valid_names(labels)}; preset names are accepted by Goal.resolve, not Goal.parse",
                )  # fmt: skip
            name = H_RES
        else:
            raise _expression_error(
                expression, tok.start, tok.end,
                f"expected an atom name such as {{{labels[0]}}}{{{labels[1]}}} or {H_RES}, got {tok.text!r}",
            )  # fmt: skip
        sums[name] = sums.get(name, 0.0) + sign * coefficient
        i += 1
    return sums


def _format_number(value: float) -> str:
    """Shortest text that reads back as exactly ``value`` (``repr`` of a float)."""
    return repr(float(value))
