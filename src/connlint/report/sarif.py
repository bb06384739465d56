"""SARIF 2.1.0 for code-scanning tools (GitHub's code scanning tab among them)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from connlint import __version__, rules
from connlint.report import FileFindings, code_point_column, source_lines
from connlint.report.help import help_text

_LINE_WITH_END = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")

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


def _fixes(path: str, findings: tuple) -> dict[tuple[int, int, str], dict]:  # type: ignore[type-arg]
    """SARIF ``fix`` objects for the findings of one file that ``connlint fix`` fixes safely.

    The file is fixed as ``connlint fix`` would fix it (all its safe fixes at once); each fixed
    result carries that change as line replacements, described as such."""
    import difflib

    from connlint.files import UnreadableFile, read_source
    from connlint.fix import fix_applicability

    if not any(fix_applicability(f) == "safe" for f in findings):
        return {}
    try:
        source = read_source(path).text
        from connlint.fix.engine import fix_text

        result = fix_text(source, path=path)
    except (UnreadableFile, ImportError, SyntaxError, ValueError, RecursionError):
        return {}
    if result.error is not None or not result.changed or not result.fixed:
        return {}
    old, new = _LINE_WITH_END.findall(source), _LINE_WITH_END.findall(result.text)
    replacements = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if i1 >= len(old):  # appended at the end: insert after the last line
            region = {"startLine": max(1, len(old)), "startColumn": len(old[-1]) + 1 if old else 1}
        elif i2 > i1:
            region = {"startLine": i1 + 1, "startColumn": 1, "endLine": i2, "endColumn": len(old[i2 - 1]) + 1}
        else:
            region = {"startLine": i1 + 1, "startColumn": 1, "endLine": i1 + 1, "endColumn": 1}
        replacements.append({"deletedRegion": region, "insertedContent": {"text": "".join(new[j1:j2])}})
    out = {}
    count = len(result.fixed)
    for fixed in result.fixed:
        f = fixed.finding
        others = f" (with the other {count - 1} safe fixes of this file)" if count > 1 else ""
        out[(f.line, f.col, f.code)] = {
            "description": {"text": f"connlint fix: {fixed.description}{others}"},
            "artifactChanges": [{"artifactLocation": {"uri": _uri(path), "uriBaseId": "%SRCROOT%"},
                                 "replacements": replacements}],
        }
    return out


def render(results: Iterable[FileFindings], docs_url: str | None = None, with_fixes: bool = True,
           sources: dict[str, list[str]] | None = None) -> str:
    """``sources`` maps a path to its lines (split at ``\\r\\n``, ``\\r`` and ``\\n`` only); without
    it each file with findings is read again (columns are converted from UTF-8 bytes to code points)."""
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
        fixes = _fixes(r.path, r.findings) if with_fixes else {}
        lines = (sources or {}).get(r.path)
        if lines is None:
            lines = source_lines(r.path)
        for f in r.findings:
            start_col = code_point_column(lines, f.line, f.col)
            end_line = max(f.end_line, f.line)
            end_col = code_point_column(lines, end_line, f.end_col) if f.end_col > 0 else start_col + 1
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
                            "startColumn": start_col,
                            "endLine": end_line,
                            "endColumn": end_col,
                        },
                    }
                }],
            }
            hint = help_text(f)
            if hint:
                result["properties"] = {"help": hint}
            fix = fixes.get((f.line, f.col, f.code))
            if fix is not None:
                result["fixes"] = [fix]
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
