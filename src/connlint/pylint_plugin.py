"""pylint plugin: ``load-plugins=connlint.pylint_plugin`` reports connlint's findings through pylint,
with pylint-style message ids (W84xx) and the rules' kebab-case names as symbols.

The analysis runs on the standard ``ast`` of the module's source, the same as the other entry points,
so pylint, flake8 and ``connlint check`` report the same findings; other modules of the project are
followed the same way.
"""

from __future__ import annotations

import ast
import os
import sys
from typing import TYPE_CHECKING, Any

from pylint.checkers import BaseChecker
from pylint.constants import WarningScope

from connlint import rules

if TYPE_CHECKING:
    from pylint.lint import PyLinter


def message_id(code: str) -> str:
    """CNL001 -> W8401, CNL010 -> W8420, CNL101 -> W8411, CNL901 -> W8491 (W84xx: connlint's block;
    W842x holds CNL010..CNL019, which do not fit the one digit that CNL00x and CNL10x use)."""
    series, number = code[3], int(code[4:])
    if series == "0" and 10 <= number < 20:
        return f"W842{number - 10}"
    return f"W84{series}{number}" if series in "01" and number < 10 else f"W84{series}{number % 10}"


MSGS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    message_id(rule.code): (
        "%s",
        rule.name,
        rule.summary,
        # findings are reported by line and column, like flake8's, not attached to an astroid node
        {"scope": WarningScope.LINE, **({} if rule.default else {"default_enabled": False})},
    )
    for rule in rules.RULES
}


# sys.path when the plugin was registered: what pylint adds to it afterwards for its run are the package
# roots of the files and packages it was given (pylint.lint.expand_modules.discover_package_path)
_BASE_PATH: list[str] = []


def _run_roots(path: str) -> set[str]:
    """The package roots of pylint's run, as ``connlint check`` declares them for its files."""
    from connlint.project import package_roots

    base = set(_BASE_PATH)
    return {p for p in sys.path if p and p not in base and os.path.isdir(p)} | package_roots([path])


class ConnlintChecker(BaseChecker):
    name = "connlint"
    msgs = MSGS  # type: ignore[assignment]

    def visit_module(self, node: Any) -> None:
        from connlint.catalog import default_catalog
        from connlint.checker import Options, check_module
        from connlint.config import Config, ConfigError, find_config, load_config

        path = getattr(node, "file", None)
        if not path or not str(path).endswith((".py", ".pyi")):
            return
        try:
            source = node.stream().read().decode(getattr(node, "file_encoding", None) or "utf-8")
        except Exception:  # pylint reports unreadable files itself
            return
        try:
            found = find_config([path])
            config = load_config(found) if found is not None else Config()
        except ConfigError:
            config = Config()
        catalog = config.catalog() if config.resources else default_catalog()
        options = Options(
            select=tuple(r.code for r in rules.RULES),
            budget=config.analysis_budget,
            release_helpers=config.release_helpers,
            unknown_calls=config.unknown_calls,
            inference=config.inference,
        )
        try:
            tree = ast.parse(source, path)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return  # pylint reports syntax errors as syntax-error itself
        from connlint.infer import PROVIDED
        from connlint.project import declare_roots

        declare_roots(_run_roots(path))
        PROVIDED[path] = node  # inference uses pylint's tree of the module
        try:
            findings, _ = check_module(tree, options, catalog, source, path)
        except RecursionError:
            return
        finally:
            PROVIDED.pop(path, None)
        for f in findings:
            self.add_message(
                message_id(f.code),
                line=f.line,
                col_offset=f.col - 1,
                end_lineno=f.end_line,
                end_col_offset=f.end_col - 1,
                args=(f"{f.code} {f.message}",),
            )


def register(linter: PyLinter) -> None:
    from connlint.infer import SHARED_MANAGER

    SHARED_MANAGER[0] = True
    _BASE_PATH[:] = sys.path
    linter.register_checker(ConnlintChecker(linter))
