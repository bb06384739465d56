"""A JSON array with one object per finding."""

from __future__ import annotations

import json
from collections.abc import Iterable

from connlint.fix import fix_applicability
from connlint.report import FileFindings


def render(results: Iterable[FileFindings]) -> str:
    items = [
        {
            "path": r.path,
            "line": f.line,
            "col": f.col,
            "end_line": f.end_line,
            "end_col": f.end_col,
            "code": f.code,
            "name": f.name,
            "message": f.message,
            # a fix form exists for this rule and API ("safe", "unsafe" under --unsafe-fixes); whether
            # the surrounding code has a provably safe shape is decided by 'connlint fix'
            "fix_available": fix_applicability(f) is not None,
            "fix_applicability": fix_applicability(f),
        }
        for r in results
        for f in r.findings
    ]
    return json.dumps(items, indent=2) + "\n"
