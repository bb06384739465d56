"""GitHub Actions workflow commands: one ``::error`` annotation per finding."""

from __future__ import annotations

from collections.abc import Iterable

from connlint.report import FileFindings


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def render(results: Iterable[FileFindings]) -> str:
    return "".join(
        f"::error file={_prop(r.path)},line={f.line},col={f.col},endLine={f.end_line},"
        f"endColumn={f.end_col},title={_prop(f.code + ' ' + f.name)}::{_data(f.code + ' ' + f.message)}\n"
        for r in results
        for f in r.findings
    )
