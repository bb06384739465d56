"""Output formats for findings: one module per format, all fed the same ``FileFindings``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from connlint.checker import Finding


@dataclass(frozen=True)
class FileFindings:
    path: str
    findings: tuple[Finding, ...]


_NEWLINE = re.compile(r"\r\n|\r|\n")


def source_lines(path: str) -> list[str] | None:
    """The file's lines as the parser numbers them (``str.splitlines`` would also split at form
    feeds and U+2028, which the parser keeps inside a line); None if it cannot be read."""
    from connlint.files import UnreadableFile, read_source

    try:
        return _NEWLINE.split(read_source(path).text)
    except UnreadableFile:
        return None


def code_point_column(lines: list[str] | None, line: int, column: int) -> int:
    """A 1-based column counted in UTF-8 bytes (``ast`` offsets, as flake8 reports them) as a 1-based
    column counted in code points, which is what SARIF's ``unicodeCodePoints`` means."""
    if lines is None or not 0 < line <= len(lines) or column <= 1:
        return column
    text = lines[line - 1]
    if text.isascii():
        return column
    return len(text.encode("utf-8")[: column - 1].decode("utf-8", errors="ignore")) + 1
