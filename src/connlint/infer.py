"""astroid inference, for the receivers the ``ast`` summaries cannot type.

``get_db(url).session()`` where ``get_db`` lives in another module and returns ``Database(url)``,
``self.app.db.session()``, ``from myapp.db import DEFAULT; DEFAULT.session()``: the resolver knows the
method name is a factory method of some class of the project, but not the receiver's class. astroid's
inference answers that, lazily: a module is parsed with astroid only when one of its calls asks, once
per process, and only calls whose method name is a known factory method ask. The answer is a class's
qualified name; whether its method acquires is still the project summaries' business.
"""

from __future__ import annotations

import ast
import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

# inferred values looked at per receiver: more means the receiver can be many things (not one class)
MAX_VALUES = 4
# receivers inferred per module: a module full of calls of a common method name stops asking
MAX_QUESTIONS = 200
# modules longer than this are not inferred: astroid's time grows with them (9,700-line peewee.py:
# 5.6 s for 94 questions, none answered), and the summaries still cover their other calls
MAX_LINES = 5000


# astroid trees already built by the caller, by path: pylint hands its own module to the plugin, whose
# inference then uses it instead of building (and caching, in pylint's manager) a second one
PROVIDED: dict[str, Any] = {}
# set by the pylint plugin: astroid's manager is pylint's, and its transforms are pylint's business
SHARED_MANAGER = [False]


class ModuleInference:
    """astroid's view of one module, built when first asked."""

    def __init__(self, source: str, module: str | None, path: str | None, roots: Iterable[str]) -> None:
        self.source = source
        self.module = module or "__main__"
        self.path = path
        self.roots = sorted(roots)
        self._tree: Any = None
        self._calls: dict[tuple[int, int, int, int], Any] | None = None
        self._failed = False
        self.questions = 0

    def receiver_class(self, call: ast.Call) -> str | None:
        """The qualified name of the class whose instance ``call``'s receiver (``x`` of ``x.m()``)
        always is, or None when astroid cannot tell, or it can be several things."""
        if not isinstance(call.func, ast.Attribute) or self._failed or self.questions >= MAX_QUESTIONS:
            return None
        if self.questions == 0 and self.source.count("\n") > MAX_LINES:
            self._failed = True
            return None
        self.questions += 1
        node = self._calls_by_position().get(
            (call.lineno, call.col_offset, call.end_lineno or 0, call.end_col_offset or 0))
        if node is None:
            return None
        return _one_class(node.func.expr, self.roots)

    def project_files(self) -> list[str]:
        """The files under the project's roots that astroid has built so far in this process."""
        if self._tree is None:
            return []
        from astroid.manager import AstroidManager

        roots = tuple(root.rstrip("/\\") + os.sep for root in self.roots)
        found = []
        for module in list(AstroidManager.brain["astroid_cache"].values()):
            path = getattr(module, "file", None)
            if isinstance(path, str) and path.startswith(roots):
                found.append(path)
        return found

    def _calls_by_position(self) -> dict[tuple[int, int, int, int], Any]:
        if self._calls is None:
            self._calls = {}
            tree = self._parse()
            if tree is not None:
                import astroid

                for node in tree.nodes_of_class(astroid.nodes.Call):
                    if isinstance(node.func, astroid.nodes.Attribute):
                        # x.a().b() and x.a() start at the same place: their ends tell them apart
                        self._calls[(node.lineno, node.col_offset, node.end_lineno or 0,
                                     node.end_col_offset or 0)] = node
        return self._calls

    def _parse(self) -> Any:
        if self._tree is None and not self._failed and self.path in PROVIDED:
            self._tree = PROVIDED[self.path]
        if self._tree is None and not self._failed:
            try:
                import astroid

                _lighten_astroid()
                with _search_path(self.roots):
                    self._tree = astroid.parse(self.source, module_name=self.module, path=self.path)
            except Exception:  # astroid's own errors on odd code: no answer, never a crash
                self._failed = True
        return self._tree


def _one_class(expr: Any, roots: list[str]) -> str | None:
    import astroid
    from astroid import bases, util

    found: set[str] = set()
    try:
        with _search_path(roots):
            for i, value in enumerate(expr.infer()):
                if i >= MAX_VALUES or value is util.Uninferable or not isinstance(value, bases.Instance):
                    return None
                proxied = value._proxied
                if not isinstance(proxied, astroid.nodes.ClassDef):
                    return None
                found.add(proxied.qname())
    except (astroid.AstroidError, RecursionError, ValueError, TypeError, AttributeError, StopIteration):
        return None
    return found.pop() if len(found) == 1 else None


def _lighten_astroid() -> None:
    """Two things astroid does for every module it builds cost far more than connlint's questions
    need, and are left out in connlint's own processes (under pylint, its manager is pylint's and
    they stay):

    - its brain rewrites modules for the standard library's magic (namedtuple, enum, six...): 4 of
      the 7 s of inference over the benchmark corpus, for receivers that are the project's own classes;
    - it infers the target of every attribute assignment (``x.attr = v``) while building, to record
      instance attributes, which imports and builds whatever ``x`` comes from (peewee.py's 9,700
      lines for a ``db.x = ...`` in a playhouse module). Only assignments through a method's own
      first argument (``self.db = Database(url)``) are recorded: what ``self.db.session()`` needs.
      Over the corpus astroid's building took 0.6 s instead of 1.3 s, with the same findings.
    """
    if SHARED_MANAGER[0] or _LIGHTENED:
        return
    from astroid.builder import AstroidBuilder
    from astroid.manager import AstroidManager

    AstroidManager.brain["_transform"].transforms.clear()
    record = AstroidBuilder.delayed_assattr

    def delayed_assattr(self: AstroidBuilder, node: Any) -> None:
        if _through_own_instance(node):
            record(self, node)

    AstroidBuilder.delayed_assattr = delayed_assattr
    _LIGHTENED.append(True)


def _through_own_instance(node: Any) -> bool:
    """Is an attribute assignment made through the first argument of the method it is in?"""
    from astroid import nodes

    if not isinstance(node.expr, nodes.Name):
        return False
    frame = node.frame()
    return (isinstance(frame, nodes.FunctionDef) and isinstance(frame.parent, nodes.ClassDef)
            and bool(frame.args.args) and frame.args.args[0].name == node.expr.name)


_LIGHTENED: list[bool] = []


@contextlib.contextmanager
def _search_path(roots: list[str]) -> Iterator[None]:
    """The project's roots first on ``sys.path`` while astroid resolves imports, as pylint does."""
    added = [r for r in roots if r not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for root in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(root)
