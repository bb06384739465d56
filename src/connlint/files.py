"""Which files to check, and reading them the way Python would (coding cookie, BOM)."""

from __future__ import annotations

import fnmatch
import io
import os
import stat
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass

PYTHON_SUFFIXES = (".py", ".pyw", ".pyi")
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "venv", "env", "virtualenv"})


def _is_virtualenv(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "pyvenv.cfg"))


def excluded(path: str, patterns: tuple[str, ...], root: str | None = None) -> bool:
    """flake8's and Ruff's rule: a pattern matches the basename, the path as given, or the path
    relative to ``root`` (the configuration file's folder) or absolute."""
    if not patterns:
        return False
    name = os.path.basename(path.rstrip(os.sep)) or path
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute, root) if root else None
    for pat in patterns:
        pat_stripped = pat.rstrip("/")
        if fnmatch.fnmatch(name, pat_stripped) or fnmatch.fnmatch(path, pat_stripped):
            return True
        if relative is not None and (fnmatch.fnmatch(relative, pat_stripped)
                                     or (relative.startswith(pat_stripped.rstrip("*") + os.sep)
                                     and not any(c in pat_stripped for c in "*?["))):
            return True
        if fnmatch.fnmatch(absolute, os.path.abspath(pat_stripped)):
            return True
    return False


def discover(paths: list[str], exclude: tuple[str, ...] = (), *, force_exclude: bool = False,
             root: str | None = None) -> Iterator[str]:
    """Files to check, in a stable order. Directories are walked for ``*.py`` skipping hidden
    folders, caches, virtualenvs and excluded globs. A file named explicitly is always checked
    (whatever its suffix) unless ``force_exclude`` applies the excludes to it too, as pre-commit
    needs."""
    for path in paths:
        if os.path.isdir(path):
            if force_exclude and excluded(path, exclude, root):
                continue
            for dirpath, dirs, files in os.walk(path):
                dirs[:] = sorted(
                    d for d in dirs
                    if not d.startswith(".")
                    and d not in SKIP_DIRS
                    and not _is_virtualenv(os.path.join(dirpath, d))
                    and not excluded(os.path.join(dirpath, d), exclude, root)
                )
                for name in sorted(files):
                    if name.endswith(".py"):
                        full = os.path.join(dirpath, name)
                        if not excluded(full, exclude, root):
                            yield full
        elif not (force_exclude and excluded(path, exclude, root)):
            yield path


@dataclass(frozen=True)
class Source:
    text: str
    encoding: str


class UnreadableFile(Exception):
    """The file cannot be read or decoded; the message says why."""


def read_source(path: str) -> Source:
    """The file's text, decoded as Python would decode it; ``UnreadableFile`` says why not."""
    try:
        # O_NONBLOCK: opening a FIFO for reading must not wait for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        if os.path.islink(path):
            raise UnreadableFile(f"broken symlink (to {os.readlink(path)!r}, which does not exist)") from None
        raise UnreadableFile("no such file") from None
    except IsADirectoryError:
        raise UnreadableFile("is a directory") from None
    except OSError as exc:
        raise UnreadableFile(_os_error(exc)) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise UnreadableFile("is a directory")
        if not stat.S_ISREG(mode):
            raise UnreadableFile(f"not a regular file ({_kind(mode)})")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read()
    except OSError as exc:
        raise UnreadableFile(_os_error(exc)) from None
    finally:
        os.close(fd)
    return decode_source(data)


def decode_source(data: bytes) -> Source:
    """Bytes to text the way the interpreter does it: BOM, coding cookie, else UTF-8."""
    if b"\0" in data:
        line = data.count(b"\n", 0, data.index(b"\0")) + 1
        raise UnreadableFile(f"contains a NUL byte (line {line}): a binary file, or not Python source")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise UnreadableFile(f"bad coding declaration: {exc.msg if hasattr(exc, 'msg') else exc}") from None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start : exc.start + 1].hex()
        raise UnreadableFile(f"cannot decode as {encoding}: {exc.reason} (byte 0x{byte}, line {line})") from None
    except LookupError as exc:
        raise UnreadableFile(f"cannot decode as {encoding}: {exc}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return Source(text, encoding)


def _os_error(exc: OSError) -> str:
    return (exc.strerror or str(exc) or type(exc).__name__).strip()


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "a special file"
