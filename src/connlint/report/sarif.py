"""SARIF 2.1.0 for code-scanning tools (GitHub's code scanning tab among them)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from connlint import __version__, rules
from connlint.report import FileFindings
from connlint.report.help import help_text

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _rule_doc_uri(code: str, docs_url: str | None) -> str:
    if docs_url:
        return docs_url.rstrip("/") + f"/{code}.md"
    return (Path(__file__).resolve().parent.parent / "rule_docs" / f"{code}.md").as_uri()


def _full_description(code: str) -> str:
    from connlint.docs import rule_doc

    text = rule_doc(code)
    # the "What it does" section, first paragraph
    part = text.split("## What it does", 1)[-1].split("##", 1)[0].strip()
    return part.split("\n\n", 1)[0].replace("\n", " ") or rules.BY_CODE[code].summary


def _uri(path: str) -> str:
    return Path(path).as_posix().lstrip("./") if path.startswith("./") else Path(path).as_posix()


def render(results: Iterable[FileFindings], docs_url: str | None = None) -> str:
    results = list(results)
    driver_rules = []
    index = {}
    for i, rule in enumerate(rules.RULES):
        index[rule.code] = i
        driver_rules.append({
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": _full_description(rule.code)},
            "helpUri": _rule_doc_uri(rule.code, docs_url),
            "defaultConfiguration": {"level": "error" if rule.default else "warning",
                                     "enabled": rule.default},
            "properties": {"tags": ["resource-leak", "database"]},
        })
    sarif_results = []
    for r in results:
        for f in r.findings:
            result = {
                "ruleId": f.code,
                "ruleIndex": index[f.code],
                "level": "error",
                "message": {"text": f.message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(r.path), "uriBaseId": "%SRCROOT%"},
                        "region": {
                            "startLine": f.line,
                            "startColumn": f.col,
                            "endLine": max(f.end_line, f.line),
                            "endColumn": f.end_col if f.end_col > 0 else f.col + 1,
                        },
                    }
                }],
            }
            hint = help_text(f)
            if hint:
                result["properties"] = {"help": hint}
            sarif_results.append(result)
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "connlint",
                "version": __version__,
                "semanticVersion": __version__,
                "rules": driver_rules,
            }},
            "results": sarif_results,
            "columnKind": "unicodeCodePoints",
        }],
    }
    return json.dumps(log, indent=2) + "\n"
