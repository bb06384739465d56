"""Helpers for the fix behaviour tests: fix a module of leaky functions, load both versions, and watch
which connections they leave open.

A leaked connection in CPython is usually reclaimed when its last reference goes; it stays open while
something still refers to it (a traceback, a debugger, a cycle, a cache). ``Tracker`` plays that
something: it stands in for a driver module inside the loaded code and keeps every connection the code
opens, so a test can see whether the code itself closed it.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from connlint.fix.engine import FixResult, fix_text

BEHAVIOUR = Path(__file__).parent / "fixtures" / "fix_behaviour"


class Tracker:
    """A driver module (or class) whose acquiring callables remember what they return."""

    def __init__(self, target: Any, tracked: tuple[str, ...] = ("connect",), **children: Tracker) -> None:
        self._target = target
        self._children = children
        self.opened: list[Any] = []
        for name in tracked:
            setattr(self, name, self._wrap(getattr(target, name)))

    def _wrap(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def acquire_async(*args: Any, **kwargs: Any) -> Any:
                obj = await func(*args, **kwargs)
                self.opened.append(obj)
                return obj

            return acquire_async

        @functools.wraps(func)
        def acquire(*args: Any, **kwargs: Any) -> Any:
            obj = func(*args, **kwargs)
            self.opened.append(obj)
            return obj

        return acquire

    def __getattr__(self, name: str) -> Any:
        children = self.__dict__.get("_children", {})
        if name in children:
            return children[name]
        return getattr(self.__dict__["_target"], name)

    def all_opened(self) -> Iterator[Any]:
        yield from self.opened
        for child in self._children.values():
            yield from child.all_opened()


@dataclass
class Versions:
    """The leaky module, its fixed text and both loaded."""

    result: FixResult
    leaky: dict[str, Any]
    fixed: dict[str, Any]

    @property
    def forms(self) -> dict[str, str]:
        """Fixed function name -> the form used."""
        names = _function_lines(self.result.source)
        return {names[f.finding.leak.function_line]: f.form for f in self.result.fixed if f.finding.leak}


def versions(name: str, unsafe: bool = False, **modules: Any) -> Versions:
    """Fix ``fixtures/fix_behaviour/<name>`` and load the leaky and the fixed text, with ``modules``
    (trackers) bound in place of the imported driver modules."""
    path = BEHAVIOUR / name
    source = path.read_text(encoding="utf-8")
    result = fix_text(source, unsafe=unsafe, path=str(path))
    assert result.error is None and result.changed, result
    assert not result.unfixed, [(u.finding.line, u.reason) for u in result.unfixed]
    return Versions(result, load(source, path, **modules), load(result.text, path, **modules))


def load(source: str, path: Path, **modules: Any) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": f"behaviour_{path.stem}"}
    exec(compile(source, str(path), "exec"), namespace)
    namespace.update(modules)
    return namespace


def _function_lines(source: str) -> dict[int, str]:
    import ast

    return {
        node.lineno: node.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def sqlite_is_open(conn: Any) -> bool:
    """sqlite3 and duckdb: a closed connection refuses to run anything."""
    try:
        conn.execute("SELECT 1")
    except Exception as exc:  # sqlite3.ProgrammingError / duckdb.ConnectionException
        if "closed" in str(exc).lower():
            return False
        raise
    return True


def close_all(*trackers: Tracker) -> None:
    """Close what the loaded code left open (sync drivers; async tests close theirs in their loop)."""
    for tracker in trackers:
        for conn in tracker.all_opened():
            with contextlib.suppress(Exception):  # already closed, or the server went away
                conn.close()
