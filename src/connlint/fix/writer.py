"""Read a file the way Python does and write the fixed text back without losing anything: same encoding,
BOM, line endings and permission bits; atomically (temp file in the same folder, then rename); never over
a file that changed since it was read."""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import stat
import tempfile
import tokenize
from dataclasses import dataclass


class WriteRefused(Exception):
    """The file was not written; the message says why."""


@dataclass(frozen=True)
class SourceFile:
    path: str
    raw: bytes  # the bytes as read
    text: str  # decoded, without the BOM, line endings untouched
    encoding: str
    bom: bool

    def encode(self, text: str) -> bytes:
        data = text.encode(self.encoding)
        return codecs.BOM_UTF8 + data if self.bom else data


def read(path: str) -> SourceFile:
    """Raises ``WriteRefused`` (with the reason) when the file cannot be read, decoded, or encoded back
    to exactly the same bytes."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise WriteRefused(exc.strerror or str(exc)) from None
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError as exc:
        raise WriteRefused(f"bad coding declaration: {exc}") from None
    bom = raw.startswith(codecs.BOM_UTF8)
    if encoding == "utf-8-sig":
        encoding = "utf-8"
    body = raw[len(codecs.BOM_UTF8):] if bom else raw
    try:
        text = body.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise WriteRefused(f"cannot decode as {encoding}: {exc}") from None
    source = SourceFile(path, raw, text, encoding, bom)
    try:
        same = source.encode(text) == raw
    except UnicodeEncodeError:
        same = False
    if not same:
        raise WriteRefused(f"its {encoding} text does not encode back to the same bytes")
    return source


def write(source: SourceFile, text: str) -> None:
    """Replace the file with ``text`` atomically, keeping its mode (and owner where allowed).

    Writes through a symlink to its target. Refuses when the file's bytes changed since ``read``, when the
    text cannot be encoded in the file's encoding, or when the file has other hard links (a rename would
    split them)."""
    try:
        data = source.encode(text)
    except UnicodeEncodeError as exc:
        raise WriteRefused(f"the fixed text cannot be encoded as {source.encoding}: {exc}") from None
    target = os.path.realpath(source.path)
    try:
        info = os.stat(target)
    except OSError as exc:
        raise WriteRefused(exc.strerror or str(exc)) from None
    if info.st_nlink > 1:
        raise WriteRefused(f"it has {info.st_nlink} hard links; an atomic rename would split them")
    folder = os.path.dirname(target) or "."
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".connlint", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(temp, stat.S_IMODE(info.st_mode))
        if hasattr(os, "chown"):
            # not allowed to give it away: it stays ours, as with any editor
            with contextlib.suppress(OSError):
                os.chown(temp, info.st_uid, info.st_gid)
        if _current_bytes(target) != source.raw:
            raise WriteRefused("it changed on disk since it was read")
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise WriteRefused(exc.strerror or str(exc)) from None
        raise


def _current_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


__all__ = ["SourceFile", "WriteRefused", "read", "write"]
