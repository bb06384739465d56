"""flake8 entry point: the same findings as ``connlint check``, from the tree flake8 already parsed.

flake8 applies ``# noqa``, --select/--ignore and per-file-ignores itself. Opt-in rules (9xx) are
default-ignored through ``extend_default_ignore`` so that ``--extend-select CNL901`` turns them on.
Nothing heavy (LibCST, astroid) is imported here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

from connlint import __version__
from connlint.catalog import default_catalog
from connlint.checker import Options, check_tree, mentions_catalog
from connlint.rules import DEFAULT_OFF, RULES


class Plugin:
    name = "connlint"
    version = __version__

    def __init__(self, tree: ast.AST, lines: list[str] | None = None) -> None:
        self.tree = tree
        self.lines = lines or []

    @classmethod
    def add_options(cls, option_manager: Any) -> None:
        option_manager.extend_default_ignore(list(DEFAULT_OFF))

    def run(self) -> Iterator[tuple[int, int, str, type]]:
        catalog = default_catalog()
        if self.lines and not mentions_catalog("".join(self.lines), catalog):
            return
        if not isinstance(self.tree, ast.Module):
            return
        # every code is produced; flake8's own selection decides what is shown
        options = Options(select=tuple(r.code for r in RULES))
        for finding in check_tree(self.tree, options, catalog):
            yield finding.line, finding.col - 1, f"{finding.code} {finding.message}", type(self)
