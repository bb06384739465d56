"""Rule documentation shipped with the package (the same pages as docs/rules/)."""

from __future__ import annotations

from importlib import resources


def rule_doc(code: str) -> str:
    try:
        return (resources.files("connlint") / "rule_docs" / f"{code}.md").read_text(encoding="utf-8")
    except FileNotFoundError:
        from connlint.rules import BY_CODE

        rule = BY_CODE[code]
        return f"{rule.code} ({rule.name})\n\n{rule.summary}\n"
