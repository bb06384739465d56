"""The README's "Set-up" section against the tool: the two commands, and the findings that
``connlint check examples/`` prints, line by line, so that the README and the tool cannot drift."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SETUP_COMMANDS = [
    "python3 -m pip install . && connlint check examples/",
    "python3 -m pip install -e '.[test]' && python3 -m pytest -q",
]


def setup_blocks() -> list[tuple[str, list[str]]]:
    """(language, lines) of each fenced block in the README's '## Set-up' section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Set-up\n", 1)[1].split("\n## ", 1)[0]
    return [
        (lang, body.splitlines())
        for lang, body in re.findall(r"^```(\w*)\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    ]


def test_setup_starts_with_the_two_commands() -> None:
    lang, lines = setup_blocks()[0]
    assert lang == "bash"
    assert lines == SETUP_COMMANDS


def test_check_examples_prints_the_readme_findings() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "connlint", "check", "examples/"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.stderr == ""
    documented = setup_blocks()[1][1]
    assert documented, "the README shows no findings for examples/"
    assert proc.stdout.splitlines() == documented
    assert proc.returncode == 1
