"""The fix as a LibCST codemod command. Add ``connlint.fix`` to the ``modules`` of
``.libcst.codemod.yaml`` (``python -m libcst.tool initialize .`` writes one), then::

    python -m libcst.tool codemod --no-format codemod.FixLeaks src/
    python -m libcst.tool codemod --no-format codemod.FixLeaks --unsafe-fixes src/

It runs the same engine as ``connlint fix``; findings without a safe fix become codemod warnings.
"""

from __future__ import annotations

import argparse

import libcst as cst
from libcst.codemod import CodemodContext, SkipFile, VisitorBasedCodemodCommand

from connlint.checker import Options
from connlint.fix.engine import fix_text


class FixLeaks(VisitorBasedCodemodCommand):
    DESCRIPTION = (
        "Close database connections, cursors, sessions and pool checkouts that connlint reports as "
        "leaking: rewrite them into 'with' or 'try'/'finally' forms where that is provably safe."
    )

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        arg_parser.add_argument("--unsafe-fixes", dest="unsafe_fixes", action="store_true",
                                help="also apply fixes that may change behaviour")
        arg_parser.add_argument("--select", dest="select", default="", metavar="CODES",
                                help="comma-separated codes or prefixes to fix")
        arg_parser.add_argument("--ignore", dest="ignore", default="", metavar="CODES",
                                help="comma-separated codes or prefixes not to fix")

    def __init__(self, context: CodemodContext, unsafe_fixes: bool = False, select: str = "",
                 ignore: str = "") -> None:
        super().__init__(context)
        self.unsafe_fixes = unsafe_fixes
        self.options = Options(select=_codes(select), ignore=_codes(ignore))

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        path = self.context.filename or "<unknown>"
        result = fix_text(tree.code, self.options, unsafe=self.unsafe_fixes, path=path)
        if result.error is not None:
            raise SkipFile(result.error)
        for unfixed in result.unfixed:
            where = unfixed.finding
            self.warn(f"{where.line}:{where.col}: {where.code} no safe fix: {unfixed.reason}")
        if not result.changed:
            return tree
        return cst.parse_module(result.text)


def _codes(value: str) -> tuple[str, ...]:
    return tuple(c.strip().upper() for c in value.replace(" ", ",").split(",") if c.strip())


__all__ = ["FixLeaks"]
