"""flake8-style lines: ``path:line:col: CODE message``."""

from __future__ import annotations

from collections.abc import Iterable

from connlint.report import FileFindings


def render(results: Iterable[FileFindings]) -> str:
    lines = [
        f"{r.path}:{f.line}:{f.col}: {f.code} {f.message}"
        for r in results
        for f in r.findings
    ]
    return "".join(line + "\n" for line in lines)
