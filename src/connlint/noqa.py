"""``# noqa`` comments with flake8's semantics, for the ``connlint`` command (flake8 applies its own).

``# noqa`` silences every finding on its line; ``# noqa: CNL001,CNL002`` only those codes (a listed
prefix such as ``CNL0`` matches the codes it starts); ``# flake8: noqa`` on a line of its own skips
the file. Comments are read with ``tokenize`` so that "# noqa" inside a string is not a comment.
"""

from __future__ import annotations

import io
import re
import tokenize

# the same pattern flake8 uses (flake8/defaults.py)
NOQA_INLINE = re.compile(r"# noqa(?::[\s]?(?P<codes>([A-Z]+[0-9]+(?:[,\s]+)?)+))?", re.IGNORECASE)
NOQA_FILE = re.compile(r"\s*# flake8[:=]\s*noqa(?P<codes>:\s?)?", re.IGNORECASE)
_SEP = re.compile(r"[,\s]+")


def comments_by_line(source: str) -> dict[int, str]:
    comments: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    return comments


class NoqaMap:
    def __init__(self, source: str) -> None:
        self._comments = comments_by_line(source) if "noqa" in source.lower() else {}
        self.skip_file = any(
            (m := NOQA_FILE.match(c)) is not None and not m.group("codes") for c in self._comments.values()
        )

    def suppressed(self, line: int, code: str) -> bool:
        if self.skip_file:
            return True
        comment = self._comments.get(line)
        if comment is None:
            return False
        match = NOQA_INLINE.search(comment)
        if match is None:
            return False
        codes_text = match.group("codes")
        if not codes_text:
            return True
        codes = {c for c in _SEP.split(codes_text.strip()) if c}
        return code in codes or code.startswith(tuple(codes))
