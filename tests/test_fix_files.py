"""``connlint fix`` on real files: nothing is lost (encoding, BOM, coding cookie, CRLF, final newline,
mode), writes are atomic and refused when unsafe, ``--diff``/``--check`` write nothing, and the
per-file report says what was fixed and what was not."""

from __future__ import annotations

import codecs
import os
import stat
import sys
from pathlib import Path

import pytest

from connlint.cli import main
from connlint.fix import writer
from connlint.fix.engine import fix_text

LEAKY = (
    "import sqlite3\n"
    "from contextlib import closing\n"
    "\n"
    "\n"
    "def f(path):\n"
    "    conn = sqlite3.connect(path)\n"
    "    rows = conn.execute('SELECT 1').fetchall()\n"
    "    conn.close()\n"
    "    return rows\n"
)
FIXED = (
    "import sqlite3\n"
    "from contextlib import closing\n"
    "\n"
    "\n"
    "def f(path):\n"
    "    with closing(sqlite3.connect(path)) as conn:\n"
    "        rows = conn.execute('SELECT 1').fetchall()\n"
    "    return rows\n"
)
UNFIXABLE = "import sqlite3\n\n\ndef g(path):\n    conn = sqlite3.connect(path)\n    return conn.cursor()\n"


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _ls(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------------------------------- bytes kept


def test_crlf_line_endings_are_kept(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.py", LEAKY.replace("\n", "\r\n").encode())
    assert main(["fix", str(path)]) == 0
    assert path.read_bytes() == FIXED.replace("\n", "\r\n").encode()


def test_mixed_line_endings_are_kept_outside_the_change(tmp_path: Path) -> None:
    source = LEAKY.replace("import sqlite3\n", "import sqlite3\r\n") + "# tail\r\n"
    path = _write(tmp_path, "m.py", source.encode())
    assert main(["fix", str(path)]) == 0
    data = path.read_bytes()
    assert data.startswith(b"import sqlite3\r\nfrom contextlib import closing\n")
    assert data.endswith(b"    return rows\n# tail\r\n")


def test_bom_and_missing_final_newline_are_kept(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.py", codecs.BOM_UTF8 + LEAKY.rstrip("\n").encode())
    assert main(["fix", str(path)]) == 0
    assert path.read_bytes() == codecs.BOM_UTF8 + FIXED.rstrip("\n").encode()


def test_coding_cookie_encoding_is_kept(tmp_path: Path) -> None:
    source = "# -*- coding: latin-1 -*-\n# Größe: é\n" + LEAKY
    path = _write(tmp_path, "m.py", source.encode("latin-1"))
    assert main(["fix", str(path)]) == 0
    assert path.read_bytes() == ("# -*- coding: latin-1 -*-\n# Größe: é\n" + FIXED).encode("latin-1")


def test_tab_indentation_is_followed(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.py", LEAKY.replace("    ", "\t").encode())
    assert main(["fix", str(path)]) == 0
    assert path.read_text() == FIXED.replace("    ", "\t")


def test_permission_bits_are_kept(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.py", LEAKY.encode())
    path.chmod(0o751)
    assert main(["fix", str(path)]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o751
    assert path.read_text() == FIXED


def test_the_write_is_atomic_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.py", LEAKY.encode())
    before = path.stat().st_ino
    assert main(["fix", str(path)]) == 0
    assert path.stat().st_ino != before  # replaced by rename, not rewritten in place
    assert _ls(tmp_path) == ["m.py"]


def test_a_symlink_stays_a_symlink(tmp_path: Path) -> None:
    real = _write(tmp_path, "real.py", LEAKY.encode())
    link = tmp_path / "link.py"
    link.symlink_to(real)
    assert main(["fix", str(link)]) == 0
    assert link.is_symlink() and real.read_text() == FIXED


# ---------------------------------------------------------------------------------------------- refusals


def test_a_file_changed_since_read_is_not_written(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.py", LEAKY.encode())
    source = writer.read(str(path))
    path.write_text(LEAKY + "# edited meanwhile\n")
    with pytest.raises(writer.WriteRefused, match="changed on disk"):
        writer.write(source, FIXED)
    assert path.read_text() == LEAKY + "# edited meanwhile\n"
    assert _ls(tmp_path) == ["m.py"]


def test_a_hard_linked_file_is_not_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "m.py", LEAKY.encode())
    os.link(path, tmp_path / "other.py")
    assert main(["fix", str(path)]) == 2
    assert "hard links" in capsys.readouterr().out
    assert path.read_text() == LEAKY and (tmp_path / "other.py").read_text() == LEAKY


def test_a_file_that_does_not_parse_is_reported_and_skipped(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    broken = _write(tmp_path, "broken.py", b"import sqlite3; open_db = lambda p: sqlite3.connect(p)\ndef f(:\n")
    good = _write(tmp_path, "good.py", LEAKY.encode())
    assert main(["fix", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert f"{broken}: error:" in out and "cannot parse" in out
    assert broken.read_bytes() == b"import sqlite3; open_db = lambda p: sqlite3.connect(p)\ndef f(:\n"
    assert good.read_text() == FIXED


def test_undecodable_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "m.py", b"import sqlite3\nx = '\xff'\n")
    assert main(["fix", str(path)]) == 2
    assert "cannot decode" in capsys.readouterr().out


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "m.py", LEAKY.encode())
    tmp_path.chmod(0o555)
    try:
        assert main(["fix", str(path)]) == 2
    finally:
        tmp_path.chmod(0o755)
    assert "not written" in capsys.readouterr().out
    assert path.read_text() == LEAKY


def test_a_result_that_would_still_be_reported_is_not_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    import connlint.fix.engine as engine

    real_apply = engine.apply

    def sabotaged(tree, plans, closing):  # type: ignore[no-untyped-def]
        fixed = real_apply(tree, plans, closing)
        leaky_again = "conn = sqlite3.connect(path)\n    if path:"
        return fixed.replace("with closing(sqlite3.connect(path)) as conn:", leaky_again)

    monkeypatch.setattr(engine, "apply", sabotaged)
    result = engine.fix_text(LEAKY)
    assert result.text == LEAKY and not result.fixed
    assert result.unfixed[0].reason == "connlint would still report it after the fix (CNL001)"


def test_a_result_that_does_not_compile_is_not_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    import connlint.fix.engine as engine

    monkeypatch.setattr(engine, "apply", lambda tree, plans, closing: "def f(:\n")
    result = engine.fix_text(LEAKY)
    assert result.text == LEAKY and not result.fixed
    assert "would not compile" in result.unfixed[0].reason


# ---------------------------------------------------------------------------------------------- modes


def test_diff_prints_a_diff_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "m.py", LEAKY.encode())
    assert main(["fix", "--diff", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith(f"--- {path}\n+++ {path}\n@@")
    assert "-    conn = sqlite3.connect(path)\n" in captured.out
    assert "+    with closing(sqlite3.connect(path)) as conn:\n" in captured.out
    assert f"{path}:6:12: CNL101 would fix: with closing(sqlite3.connect(...)) as conn" in captured.err
    assert path.read_text() == LEAKY
    assert _ls(tmp_path) == ["m.py"]


def test_diff_marks_a_missing_final_newline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "m.py", LEAKY.rstrip("\n").encode())
    main(["fix", "--diff", str(path)])
    assert "\\ No newline at end of file" in capsys.readouterr().out


def test_check_writes_nothing_and_exits_1_when_something_would_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "m.py", LEAKY.encode())
    assert main(["fix", "--check", str(path)]) == 1
    assert path.read_text() == LEAKY
    assert "would fix" in capsys.readouterr().out
    clean = _write(tmp_path, "clean.py", FIXED.encode())
    assert main(["fix", "--check", str(clean)]) == 0
    unfixable = _write(tmp_path, "u.py", UNFIXABLE.encode())
    assert main(["fix", "--check", str(unfixable)]) == 0  # findings, but nothing would change


def test_report_says_what_was_fixed_and_what_was_not(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "m.py", (LEAKY + "\n\n" + UNFIXABLE.split("\n", 1)[1]).encode())
    assert main(["fix", str(path)]) == 1  # a finding remains
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}:6:12: CNL101 fixed: with closing(sqlite3.connect(...)) as conn"
    # positions of what is left are in the file as written
    reason = "it would return a value that needs 'conn' open at line 16"
    assert out[1] == f"{path}:14:12: CNL001 no safe fix: {reason}"
    assert out[2] == "Fixed 1 finding in 1 file; 1 without a safe fix."


def test_second_run_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "m.py", LEAKY.encode())
    assert main(["fix", str(path)]) == 0
    first = path.read_bytes()
    assert main(["fix", str(path)]) == 0
    assert path.read_bytes() == first
    assert capsys.readouterr().out.splitlines()[-1] == "Nothing to fix."


def test_unsafe_fixes_are_reported_and_applied_only_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = (
        "import sqlite3\nfrom contextlib import closing\n\nimport pytest\n\n\n@pytest.fixture\n"
        "def db():\n    conn = sqlite3.connect(':memory:')\n    return conn\n"
    )
    path = _write(tmp_path, "conftest.py", source.encode())
    assert main(["fix", str(path)]) == 1
    out = capsys.readouterr().out
    assert "no safe fix: an unsafe fix is available with --unsafe-fixes" in out
    assert "(1 fixable with --unsafe-fixes)" in out
    assert path.read_text() == source
    assert main(["fix", "--unsafe-fixes", str(path)]) == 0
    assert "CNL007 fixed (unsafe)" in capsys.readouterr().out
    assert "yield conn" in path.read_text()


def test_select_and_ignore_limit_what_is_fixed(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.py", LEAKY.encode())
    assert main(["fix", "--select", "CNL001", str(path)]) == 0
    assert path.read_text() == LEAKY  # the finding is CNL101
    assert main(["fix", "--ignore", "CNL101", str(path)]) == 0
    assert path.read_text() == LEAKY
    assert main(["fix", "--select", "CNL1", str(path)]) == 0
    assert path.read_text() == FIXED


def test_unknown_code_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fix", "--select", "E501", str(tmp_path)]) == 2
    assert "unknown rule code" in capsys.readouterr().err


def test_fix_text_keeps_text_outside_the_changed_lines_byte_for_byte() -> None:
    head = "import sqlite3  # driver\n'''doc'''\nx = [1,\n  2]   # odd  spacing\n\n\n"
    tail = "\n\ny = {'a':1}  ;  z = \"q\"\n"
    result = fix_text(head + LEAKY.split("\n", 1)[1] + tail)
    assert result.changed
    assert result.text.startswith(head) and result.text.endswith(tail)


def test_configuration_is_honoured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.connlint]\nextend-exclude = ["skipped"]\nrelease-helpers = ["app.db.close_quietly"]\n'
        '[tool.connlint.per-file-ignores]\n"ignored.py" = ["CNL101"]\n'
    )
    (tmp_path / "skipped").mkdir()
    skipped = _write(tmp_path / "skipped", "m.py", LEAKY.encode())
    ignored = _write(tmp_path, "ignored.py", LEAKY.encode())
    helper = _write(tmp_path, "helper.py", (
        b"import duckdb\nfrom app.db import close_quietly\n\n\ndef f(p):\n    conn = duckdb.connect(p)\n"
        b"    conn.execute('x')\n    if p:\n        return\n    close_quietly(conn)\n"
    ))
    fixed = _write(tmp_path, "fixed.py", LEAKY.encode())
    main(["fix", str(tmp_path)])
    assert skipped.read_text() == LEAKY and ignored.read_text() == LEAKY
    assert "with duckdb" not in helper.read_text()  # the configured helper closes it: no 'with'
    assert "CNL002 no safe fix: 'close_quietly()' closes 'conn' too at line 10" in capsys.readouterr().out
    assert fixed.read_text() == FIXED
