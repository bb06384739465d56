"""The ``connlint`` command end to end, in a subprocess like users run it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LEAKY = textwrap.dedent(
    """\
    import sqlite3


    def count(path, table):
        conn = sqlite3.connect(path)
        if not table:
            return 0
        n = conn.execute(f"select count(*) from {table}").fetchone()[0]
        conn.close()
        return n
    """
)
CLEAN = (
    "import sqlite3\n\n\ndef f(p):\n    with __import__('contextlib').closing(sqlite3.connect(p)) as c:\n"
    "        return c\n"
)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connlint", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "leaky.py").write_text(LEAKY)
    (tmp_path / "pkg" / "clean.py").write_text("import sqlite3\n\nx = 1\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "skip.py").write_text(LEAKY)
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "venv" / "lib.py").write_text(LEAKY)
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "x.py").write_text(LEAKY)
    return tmp_path


def test_text_output_relative_paths_and_exit_1(project: Path) -> None:
    proc = run("check", "--format", "concise", "pkg", cwd=project)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == (
        "pkg/leaky.py:5:12: CNL002 connection 'conn' from sqlite3.connect() is not closed "
        "when the function returns at line 7\n"
    )


def test_text_format_shows_the_source_line_a_caret_and_help(project: Path) -> None:
    proc = run("check", "pkg/leaky.py", cwd=project)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        "pkg/leaky.py:5:12: CNL002 connection 'conn' from sqlite3.connect() is not closed when the "
        "function returns at line 7",
        "  |",
        "5 |     conn = sqlite3.connect(path)",
        "  |            ^^^^^^^^^^^^^^^^^^^^^ CNL002",
        "  |",
        "  = help: use `with contextlib.closing(sqlite3.connect(...)) as conn:` (its own `with` does not "
        "close it)",
        "",
    ]
    assert "\033[" not in proc.stdout  # not a terminal: no colour


def test_caret_counts_characters_on_a_non_ascii_line(tmp_path: Path) -> None:
    """The columns are UTF-8 byte offsets (as flake8 reports them); the caret sits under the call all
    the same, and a form feed inside the file does not shift the line shown."""
    (tmp_path / "m.py").write_text(
        "import sqlite3\n\x0c\n\ndef f(p):\n    é = 'ü'; c = sqlite3.connect(p)\n    return 1\n", encoding="utf-8"
    )
    proc = run("check", "--no-cache", "m.py", cwd=tmp_path)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("m.py:5:20: CNL001"), proc.stdout  # "é" and "ü" are two bytes each
    assert lines[2] == "5 |     é = 'ü'; c = sqlite3.connect(p)"
    assert lines[3] == "  |                  ^^^^^^^^^^^^^^^^^^ CNL001"


def test_colour_only_when_forced_or_on_a_tty_and_no_color_wins(project: Path) -> None:
    import os

    env = {**os.environ, "FORCE_COLOR": "1"}
    forced = subprocess.run([sys.executable, "-m", "connlint", "check", "pkg"], cwd=project, env=env,
                            capture_output=True, text=True)
    assert "\033[" in forced.stdout
    env["NO_COLOR"] = "1"
    plain = subprocess.run([sys.executable, "-m", "connlint", "check", "pkg"], cwd=project, env=env,
                           capture_output=True, text=True)
    assert "\033[" not in plain.stdout


def test_statistics(project: Path) -> None:
    proc = run("check", "--format", "concise", "--statistics", "pkg", cwd=project)
    assert proc.stdout.splitlines()[-1] == "1     CNL002 resource-not-closed-on-path"


def test_github_annotations(project: Path) -> None:
    proc = run("check", "--format", "github", "pkg/leaky.py", cwd=project)
    assert proc.stdout == (
        "::error file=pkg/leaky.py,line=5,col=12,endLine=5,endColumn=33,"
        "title=CNL002 resource-not-closed-on-path::CNL002 connection 'conn' from sqlite3.connect() is not "
        "closed when the function returns at line 7\n"
    )


def test_default_path_walks_and_skips_hidden_venv_node_modules(project: Path) -> None:
    proc = run("check", "--format", "concise", cwd=project)
    assert proc.returncode == 1
    assert [line.split(":")[0] for line in proc.stdout.splitlines()] == ["./pkg/leaky.py"]


def test_json_output_fields(project: Path) -> None:
    proc = run("check", "--format", "json", "pkg/leaky.py", cwd=project)
    assert proc.returncode == 1
    (item,) = json.loads(proc.stdout)
    assert item["path"] == "pkg/leaky.py"
    # the end column is exclusive, as in SARIF
    assert (item["line"], item["col"], item["end_line"], item["end_col"]) == (5, 12, 5, 33)
    assert item["code"] == "CNL002" and item["name"] == "resource-not-closed-on-path"
    assert "line 7" in item["message"]
    assert item["fix_available"] is True and item["fix_applicability"] == "safe"


def test_clean_exit_0_and_empty_json(project: Path) -> None:
    assert run("check", "pkg/clean.py", cwd=project).returncode == 0
    proc = run("check", "--format", "json", "pkg/clean.py", cwd=project)
    assert proc.returncode == 0 and json.loads(proc.stdout) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--select", "CNL002"], 1),
        (["--select", "CNL0"], 1),
        (["--select", "CNL001"], 0),
        (["--ignore", "CNL002"], 0),
        (["--ignore", "CNL0"], 0),
        (["--select", "CNL", "--ignore", "CNL002"], 0),
        (["--select", "CNL002", "--ignore", "CNL0"], 1),  # the more specific selector wins
    ],
)
def test_select_and_ignore(project: Path, args: list[str], expected: int) -> None:
    assert run("check", *args, "pkg/leaky.py", cwd=project).returncode == expected


def test_unknown_code_is_a_usage_error(project: Path) -> None:
    proc = run("check", "--select", "E501", "pkg", cwd=project)
    assert proc.returncode == 2 and "unknown rule code" in proc.stderr


@pytest.mark.parametrize(
    ("comment", "silenced"),
    [("# noqa", True), ("# noqa: CNL002", True), ("# NOQA:CNL002,CNL001", True), ("# noqa: CNL0", True),
     ("# noqa: CNL001", False), ("# noqa:E501", False)],
)
def test_noqa(tmp_path: Path, comment: str, silenced: bool) -> None:
    src = LEAKY.replace("conn = sqlite3.connect(path)", f"conn = sqlite3.connect(path)  {comment}")
    (tmp_path / "m.py").write_text(src)
    proc = run("check", "m.py", cwd=tmp_path)
    assert (proc.stdout == "") is silenced


def test_noqa_in_a_string_is_not_a_comment(tmp_path: Path) -> None:
    src = LEAKY.replace("conn = sqlite3.connect(path)", "conn = sqlite3.connect(path, '# noqa')")
    (tmp_path / "m.py").write_text(src)
    assert run("check", "m.py", cwd=tmp_path).stdout != ""


def test_bad_files_are_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "a_broken.py").write_text("import sqlite3; open_db = lambda p: sqlite3.connect(p)\ndef f(:\n")
    (tmp_path / "b_latin.py").write_bytes(b"import sqlite3\nx = '\xff'\n")
    (tmp_path / "c_leaky.py").write_text(LEAKY)
    (tmp_path / "d_dir.py").mkdir()
    proc = run("check", "--format", "concise", "a_broken.py", "b_latin.py", "c_leaky.py", "missing.py",
               cwd=tmp_path)
    assert proc.returncode == 2
    assert "c_leaky.py:5:12: CNL002" in proc.stdout
    err = proc.stderr.splitlines()
    assert len(err) == 3, proc.stderr
    assert err[0].startswith("a_broken.py: error: 2:7: cannot parse")
    assert err[1].startswith("b_latin.py: error: cannot decode as utf-8")
    assert err[2].startswith("missing.py: error: no such file")
    assert "Traceback" not in proc.stderr


def test_coding_cookie_and_bom(tmp_path: Path) -> None:
    latin = LEAKY.encode().replace(b"return 0", b"return '\xe9'")
    (tmp_path / "latin.py").write_bytes(b"# -*- coding: latin-1 -*-\n" + latin)
    (tmp_path / "bom.py").write_bytes(b"\xef\xbb\xbf" + LEAKY.encode())
    proc = run("check", "--format", "concise", "latin.py", "bom.py", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert len(proc.stdout.splitlines()) == 2


def test_exclude_globs(project: Path) -> None:
    assert run("check", "--exclude", "leaky.py", "pkg", cwd=project).returncode == 0
    assert run("check", "--exclude", "pkg", ".", cwd=project).returncode == 0


def test_rules_listing() -> None:
    proc = run("rules", cwd=Path.cwd())
    assert proc.returncode == 0
    rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()[1:]}
    assert rows["CNL002"] == ["resource-not-closed-on-path", "safe", "on"]
    assert rows["CNL007"][1] == "unsafe"
    assert "CNL901" in proc.stdout and "off (opt-in)" in proc.stdout


def test_opt_in_rule_needs_explicit_selection(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("import sqlite3\nCONN = sqlite3.connect('x.db')\n")
    assert run("check", "m.py", cwd=tmp_path).returncode == 0
    proc = run("check", "--extend-select", "CNL901", "m.py", cwd=tmp_path)
    assert proc.returncode == 1 and "CNL901" in proc.stdout
    # as in flake8, an explicit selection beats the implicit default-off
    assert run("check", "--select", "CNL", "m.py", cwd=tmp_path).returncode == 1
    assert run("check", "--select", "CNL0", "m.py", cwd=tmp_path).returncode == 0


def test_a_factory_of_another_root_is_followed_whatever_the_jobs(tmp_path: Path) -> None:
    """Two package roots (a library and its user, as src/ and tests/ are): a wrapper in one calls a
    factory of the other. Every process knows every root of the run, and the project rounds look for
    a newly found factory in files of any root, so the finding does not depend on -j."""
    (tmp_path / "a" / "pkg_a").mkdir(parents=True)
    (tmp_path / "b" / "pkg_b").mkdir(parents=True)
    (tmp_path / "a" / "pkg_a" / "__init__.py").write_text("")
    (tmp_path / "b" / "pkg_b" / "__init__.py").write_text("")
    (tmp_path / "b" / "pkg_b" / "db.py").write_text(
        "import sqlite3\n\n\ndef get_conn(path):\n    return sqlite3.connect(path)\n")
    (tmp_path / "a" / "pkg_a" / "wrap.py").write_text(
        "from pkg_b.db import get_conn\n\n\ndef wrapped(path):\n    return get_conn(path)\n")
    (tmp_path / "a" / "pkg_a" / "user.py").write_text(
        "from pkg_a.wrap import wrapped\n\n\ndef count(path):\n    conn = wrapped(path)\n"
        "    return conn.execute('select 1').fetchone()\n")
    for jobs in ("-j1", "-j2"):
        proc = run("check", "--no-cache", jobs, "--format", "concise", "a", "b", cwd=tmp_path)
        assert proc.stdout.startswith("a/pkg_a/user.py:5:12: CNL001 connection 'conn' from wrapped() "), (
            jobs, proc.stdout, proc.stderr)
