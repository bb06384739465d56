"""Framework lifecycles: resources that a framework hook, not the storing function, must release.

Flask: ``g.db = sqlite3.connect(...)`` is fine when a ``teardown_appcontext``/``teardown_request``
handler of the project closes ``g.db`` (``db = g.pop("db", None); db.close()``, or
``g.db.close()``), and a leak when none does (CNL009). The handler may live in another module of the
project (the Flask tutorial registers it from an ``init_app`` function), so the project's files are
searched for one.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from connlint.resolve import Origin, Resolver, dotted

TEARDOWN = re.compile(r"\bteardown_(?:appcontext|request|app_request)\b")


@dataclass(frozen=True)
class GStore:
    attr: str
    origin: Origin
    call: ast.Call


def g_stores(tree: ast.Module, resolver: Resolver) -> Iterator[GStore]:
    """``g.<attr> = <acquiring call>`` anywhere in functions of the module."""
    if "flask.g" not in resolver.imports.names.values() and "flask" not in resolver.imports.names.values():
        return
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        scope = None
        for node in resolver.index.of(func):
            if not isinstance(node, ast.Assign):
                continue
            value = node.value.value if isinstance(node.value, ast.Await) else node.value
            if not isinstance(value, ast.Call):
                continue
            for target in node.targets:
                if isinstance(target, ast.Attribute) and resolver.qualify(target.value) == "flask.g":
                    if scope is None:
                        scope = resolver.function_scope(func, None)
                    origin = resolver.acquisition(value, scope)
                    if origin is not None and origin.api.tracked_in_functions:
                        yield GStore(target.attr, origin, value)


def _closes_g_attr(text: str, attr: str) -> bool:
    """Does this source have a teardown handler that closes g.<attr>?"""
    if not TEARDOWN.search(text):
        return False
    return bool(
        re.search(rf"""g\.pop\(\s*['"]{re.escape(attr)}['"]""", text)
        or re.search(rf"""getattr\(\s*g\s*,\s*['"]{re.escape(attr)}['"]""", text)
        or re.search(rf"\bg\.{re.escape(attr)}\.close\(", text)
    ) and ".close(" in text


@lru_cache(maxsize=64)
def _project_texts(root: str) -> tuple[str, ...]:
    """The sources under a project root that register a Flask teardown handler."""
    texts = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("node_modules", "__pycache__")]
        for name in files:
            if name.endswith(".py"):
                try:
                    with open(os.path.join(dirpath, name), encoding="utf-8", errors="replace") as fh:
                        text = fh.read()
                except OSError:
                    continue
                if TEARDOWN.search(text):
                    texts.append(text)
        if len(texts) > 200:
            break
    return tuple(texts)


def torn_down(attr: str, module_text: str, root: str | None) -> bool:
    if _closes_g_attr(module_text, attr):
        return True
    if root is None:
        return False
    answer = torn_down_elsewhere(attr, root)
    from connlint.project import note

    note(["t", root, attr, answer])  # a cached result depends on the other files of the project
    return answer


def torn_down_elsewhere(attr: str, root: str) -> bool:
    """Does a module under the project root have a teardown handler that closes g.<attr>?"""
    return any(_closes_g_attr(text, attr) for text in _project_texts(root))


__all__ = ["GStore", "dotted", "g_stores", "torn_down"]
