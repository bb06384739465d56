"""Which files to check, and reading them the way Python would (coding cookie, BOM)."""

from __future__ import annotations

import fnmatch
import io
import os
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass

SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "venv", "env", "virtualenv"})


def _is_virtualenv(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "pyvenv.cfg"))


def excluded(path: str, patterns: tuple[str, ...]) -> bool:
    """flake8's rule: a pattern matches the basename or the whole (normalised) path."""
    if not patterns:
        return False
    name = os.path.basename(path.rstrip(os.sep)) or path
    absolute = os.path.abspath(path)
    return any(
        fnmatch.fnmatch(name, pat) or fnmatch.fnmatch(absolute, os.path.abspath(pat)) or fnmatch.fnmatch(path, pat)
        for pat in patterns
    )


def discover(paths: list[str], exclude: tuple[str, ...] = ()) -> Iterator[str]:
    """Files to check, in a stable order. Named files are always yielded (even without .py) unless
    excluded; directories are walked for ``*.py`` skipping hidden folders, caches and virtualenvs."""
    for path in paths:
        if os.path.isdir(path):
            if excluded(path, exclude) and path not in (".", "./"):
                continue
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(
                    d for d in dirs
                    if not d.startswith(".")
                    and d not in SKIP_DIRS
                    and not _is_virtualenv(os.path.join(root, d))
                    and not excluded(os.path.join(root, d), exclude)
                )
                for name in sorted(files):
                    if name.endswith(".py"):
                        full = os.path.join(root, name)
                        if not excluded(full, exclude):
                            yield full
        elif not excluded(path, exclude):
            yield path


@dataclass(frozen=True)
class Source:
    text: str
    encoding: str


class UnreadableFile(Exception):
    """The file cannot be read or decoded; the message says why."""


def read_source(path: str) -> Source:
    if os.path.isdir(path):
        raise UnreadableFile("is a directory")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise UnreadableFile("no such file (or a broken symlink)") from None
    except OSError as exc:
        raise UnreadableFile(exc.strerror or str(exc)) from None
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise UnreadableFile(f"bad coding declaration: {exc.msg if hasattr(exc, 'msg') else exc}") from None
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise UnreadableFile(f"cannot decode as {encoding}: {exc}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return Source(text, encoding)
