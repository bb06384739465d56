"""Output formats for findings: one module per format, all fed the same ``FileFindings``."""

from __future__ import annotations

from dataclasses import dataclass

from connlint.checker import Finding


@dataclass(frozen=True)
class FileFindings:
    path: str
    findings: tuple[Finding, ...]
