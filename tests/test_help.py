"""The ``help:`` line of the text and SARIF outputs names a fix that fits the finding's kind: a class
that keeps a connection gets a method, a Flask ``g`` store a teardown handler, a scoped_session a
``remove()``; never the ``with`` form of a local variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from connlint.checker import Options, check_source
from connlint.report.help import help_text

FIXTURES = Path(__file__).parent / "fixtures"

EXPECTED = {
    "CNL008": "method of the class",
    "CNL010": "Session.remove()",
    "CNL011": "Session.remove()` in a `finally",
}
SOURCES = {
    "CNL008": "classes_owning_resources.py",
    "CNL010": "sqlalchemy_scoped_session_requests.py",
    "CNL011": "sqlalchemy_scoped_session_threads.py",
}


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_help_fits_the_kind_of_finding(code: str) -> None:
    text = (FIXTURES / "cases" / SOURCES[code]).read_text(encoding="utf-8")
    findings = [f for f in check_source(text, Options()) if f.code == code]
    assert findings, f"the fixture has no {code}"
    for finding in findings:
        hint = help_text(finding)
        assert EXPECTED[code] in hint, hint
        assert "contextlib.closing" not in hint
