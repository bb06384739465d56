"""Human output. ``full`` (the default ``text``) is Ruff-like: the flake8-style line, the source line
with a caret under the acquiring call, and a ``help:`` line naming the fix. ``concise`` is the
flake8-style line alone."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TextIO

from connlint.report import FileFindings, code_point_column, source_lines
from connlint.report.help import help_text


def use_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(getattr(stream, "isatty", lambda: False)())


class _Paint:
    def __init__(self, on: bool) -> None:
        self.on = on

    def __call__(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.on else text


def render_concise(results: Iterable[FileFindings], colour: bool = False) -> str:
    paint = _Paint(colour)
    return "".join(
        f"{paint(r.path, '1')}:{f.line}:{f.col}: {paint(f.code, '1;31')} {f.message}\n"
        for r in results
        for f in r.findings
    )


def render(results: Iterable[FileFindings], colour: bool = False, sources: dict[str, list[str]] | None = None) -> str:
    """``sources`` maps a path to its lines; without it the file is read again for the snippet."""
    paint = _Paint(colour)
    out: list[str] = []
    for r in results:
        lines = (sources or {}).get(r.path)
        if lines is None:
            lines = _read_lines(r.path)
        for f in r.findings:
            out.append(f"{paint(r.path, '1')}:{f.line}:{f.col}: {paint(f.code, '1;31')} {f.message}\n")
            if 0 < f.line <= len(lines):
                text = lines[f.line - 1].rstrip("\r\n").expandtabs(1)
                width = len(str(f.line))
                pad = " " * width
                # columns are UTF-8 byte offsets (as flake8 reports them); the caret counts characters
                col = code_point_column(lines, f.line, f.col)
                end_col = code_point_column(lines, f.line, f.end_col) if f.end_line == f.line else 0
                end = end_col if end_col > col else len(text) + 1
                carets = "^" * max(1, end - col)
                out.append(f"{pad} {paint('|', '34')}\n")
                out.append(f"{paint(str(f.line), '34')} {paint('|', '34')} {text}\n")
                out.append(f"{pad} {paint('|', '34')} {' ' * (col - 1)}{paint(carets + ' ' + f.code, '31')}\n")
                out.append(f"{pad} {paint('|', '34')}\n")
                hint = help_text(f)
                if hint:
                    out.append(f"{pad} {paint('=', '34')} {paint('help', '1;36')}: {hint}\n")
            out.append("\n")
    return "".join(out)


def _read_lines(path: str) -> list[str]:
    return source_lines(path) or []


def render_statistics(results: Iterable[FileFindings]) -> str:
    from collections import Counter

    from connlint.rules import BY_CODE

    counts = Counter(f.code for r in results for f in r.findings)
    return "".join(f"{counts[code]:<5} {code} {BY_CODE[code].name}\n" for code in sorted(counts))


def write(text: str, stream: TextIO = sys.stdout) -> None:
    stream.write(text)
