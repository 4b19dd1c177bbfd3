"""Griffe extension: Sphinx-style roles in the docstrings become cross-references.

The package's docstrings name other objects the reStructuredText way
(``:func:`sx_pid```, ``:class:`~infomorphic.goals.Goal```, ``:data:`~.hopfield.RULES```).
Markdown has no such roles, so without this extension they would show up literally.  Each role
is rewritten into an *optional* autorefs link: a link when the target is documented on some
page of the site, plain code otherwise (never a warning, so ``mkdocs build --strict`` is not
affected by roles that point at undocumented helpers).

Loaded by mkdocstrings (``extensions:`` in ``mkdocs.yml``).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(
    r":(?:py:)?(?:func|class|meth|mod|data|attr|exc|obj|const|type):"
    r"`(?:(?P<title>[^`<]*?)\s*<(?P<target>[^`>]+)>|(?P<plain>[^`]+))`"
)


def _module_of(obj: griffe.Object) -> griffe.Module:
    current: Any = obj
    while not current.is_module:
        current = current.parent
    return current


def _resolve(obj: griffe.Object, target: str) -> str:
    """Best-effort full path of ``target`` as seen from ``obj`` (the target itself if unsure)."""
    target = target.rstrip("()")
    if target.startswith("."):
        module = _module_of(obj)
        package = module if module.is_package else module.parent
        dots = len(target) - len(target.lstrip("."))
        for _ in range(dots - 1):
            if package is not None and package.parent is not None:
                package = package.parent
        rest = target.lstrip(".")
        return f"{package.path}.{rest}" if package is not None else rest
    head, _, tail = target.partition(".")
    try:
        base = obj.resolve(head)
    except Exception:  # unknown names stay as written
        return target
    return f"{base}.{tail}" if tail else base


def _rewrite(obj: griffe.Object, text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        target = match.group("target") or match.group("plain")
        short = target.startswith("~")
        target = target.lstrip("~")
        title = match.group("title") or (target.rsplit(".", 1)[-1] if short else target.lstrip("."))
        identifier = html.escape(_resolve(obj, target), quote=True)
        return f'<autoref identifier="{identifier}" optional><code>{html.escape(title)}</code></autoref>'

    return ROLE.sub(replace, text)


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring of a package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        seen: set[int] = set()
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj.docstring is not None and ":" in obj.docstring.value:
                obj.docstring.value = _rewrite(obj, obj.docstring.value)
            for member in obj.members.values():
                if not member.is_alias:
                    stack.append(member)  # type: ignore[arg-type]
