"""The text gates that let most functions skip a tree walk must never hide what the walk would find.

Each helper below releases or keeps its parameter in a spelling the gates must still see (a line
break, parentheses, a subscripted receiver); a caller that hands its connection to the helper then
has nothing to report. The same callers with helpers that do nothing to the parameter are reported:
the test can fail both ways.
"""

from __future__ import annotations

import textwrap

import pytest

from connlint.checker import check_source

HELPERS = {
    "release across a line break": "def done(c):\n    (c\n     ).close()\n",
    "release through parentheses": "def done(c):\n    (c).close()\n",
    "stored in a subscripted list": "def done(c):\n    REGISTRY[0].append(c)\n",
    "stored as a later argument": "def done(c):\n    POOL.put('key', c)\n",
    "returned in parentheses": "def done(c):\n    return (\n        c\n    )\n",
    "assigned after a continuation": "def done(c):\n    HOLDER.conn = \\\n        c\n",
}

CALLER = """
import sqlite3
REGISTRY = [[]]

{helper}

def work(path):
    conn = sqlite3.connect(path)
    {use}done(conn)
"""


@pytest.mark.parametrize("helper", sorted(HELPERS))
def test_helper_spellings_are_seen(helper: str) -> None:
    code = textwrap.dedent(HELPERS[helper])
    use = "return " if "returned" in helper else ""
    assert check_source(CALLER.format(helper=code, use=use)) == []


@pytest.mark.parametrize("helper", sorted(HELPERS))
def test_the_same_spelling_on_another_name_is_not_trusted(helper: str) -> None:
    # the helper's parameter is renamed: the body now closes/keeps a global 'c', not its argument
    code = textwrap.dedent(HELPERS[helper]).replace("def done(c):", "def done(x):")
    use = "return " if "returned" in helper else ""
    findings = check_source("c = None\n" + CALLER.format(helper=code, use=use))
    assert [f.code for f in findings] == ["CNL001"]
