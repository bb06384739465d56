"""Bad input never crashes connlint: one diagnostic line naming the file and the problem, no traceback, the
run goes on with the other files, exit status 2 (1 for findings and 0 for none otherwise).

Every bad file is made here, in tmp_path. The standard-library run at the end is marked slow; it runs in CI.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest

from connlint.catalog import default_catalog
from connlint.checker import Options
from connlint.flake8_plugin import Plugin
from connlint.runner import check_file, check_text

DB = "import sqlite3; open_db = lambda p: sqlite3.connect(p)\n"
LEAKY = (
    "import sqlite3\n\n\ndef count(path):\n    conn = sqlite3.connect(path)\n"
    "    return conn.execute('select 1').fetchone()\n"
)
LEAK_LINE = "z_leaky.py:5:12: CNL001"
PY = f"Python {sys.version_info[0]}.{sys.version_info[1]}"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "connlint", "check", "--format", "concise", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=600)


def nested(depth: int, opening: str, inner: str, closing: str) -> str:
    return opening * depth + inner + closing * depth


# name -> (bytes of the file, fragment the diagnostic must contain). Each file calls sqlite3.connect: a
# file that calls nothing that can acquire is never parsed (see
# test_a_file_that_names_no_database_api_is_not_parsed).
BAD: dict[str, tuple[bytes, str]] = {
    "syntax_error.py": (DB.encode() + b"def f(:\n    pass\n",
                        f"2:7: cannot parse with the {PY} grammar: invalid syntax"),
    "tstring_py314.py": (DB.encode() + b'name = "x"\nq = t"select {name}"\n', f"cannot parse with the {PY} grammar"),
    "python2.py": (DB.encode() + b'print "x"\nexec "y = 1"\n', "Missing parentheses in call to 'print'"),
    "invalid_utf8.py": (DB.encode() + b"x = '\xff\xfe'\n",
                        "cannot decode as utf-8: invalid start byte (byte 0xff, line 2)"),
    "wrong_cookie.py": (b"# -*- coding: nonexistent -*-\n" + DB.encode(),
                        "bad coding declaration: unknown encoding: nonexistent"),
    "latin1_as_utf8_cookie.py": (b"# coding: utf-8\n" + DB.encode() + b"x = '\xe9'\n", "cannot decode as utf-8"),
    "nul_bytes.py": (DB.encode() + b"x = 1\x00\n", "contains a NUL byte (line 2)"),
    "parens_10000.py": (f"{DB}x = {nested(10_000, '(', '1', ')')}\n".encode(), "too many nested parentheses"),
    "lists_10000.py": (f"{DB}x = {nested(10_000, '[', '', ']')}\n".encode(), "too many nested parentheses"),
    "plus_100000.py": (f"{DB}x = {'+'.join(['1'] * 100_000)}\n".encode(), "nested too deeply for Python's parser"),
    "not_10000.py": (f"{DB}x = {'not ' * 10_000}1\n".encode(), "nested too deeply for Python's parser"),
    "attribute_chain_100000.py": (f"{DB}x = sqlite3{'.a' * 100_000}\n".encode(), "nested too deeply"),
    "calls_100000.py": (f"{DB}x = f{'()' * 100_000}\n".encode(), "nested too deeply"),
    "indent_200.py": (
        (DB + "".join("    " * d + f"if x{d}:\n" for d in range(200)) + "    " * 200 + "pass\n").encode(),
        "too many levels of indentation",
    ),
}


def make(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def assert_one_diagnostic(proc: subprocess.CompletedProcess[str], name: str, fragment: str) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"{name}: error: "), lines[0]
    assert fragment in lines[0], lines[0]
    assert proc.returncode == 2


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_one_diagnostic_and_the_run_goes_on(tmp_path: Path, name: str) -> None:
    data, fragment = BAD[name]
    make(tmp_path, name, data)
    (tmp_path / "z_leaky.py").write_text(LEAKY)
    proc = run(name, "z_leaky.py", cwd=tmp_path)
    assert_one_diagnostic(proc, name, fragment)
    assert LEAK_LINE in proc.stdout  # the file after the bad one was still checked


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_text_in_process_never_raises(name: str) -> None:
    data, _ = BAD[name]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return  # a decoding problem is read_source's, covered above
    result = check_text(name, text, Options(), default_catalog())
    assert result.error is not None or result.findings == ()


def test_all_bad_files_in_one_run_serial_and_parallel(tmp_path: Path) -> None:
    for name, (data, _) in BAD.items():
        make(tmp_path, name, data)
    (tmp_path / "z_leaky.py").write_text(LEAKY)
    outputs = []
    for jobs in ("-j1", "-j2"):
        proc = run(jobs, ".", cwd=tmp_path)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.splitlines()
        assert sorted(line.split(": error: ")[0] for line in lines) == sorted(f"./{n}" for n in BAD)
        assert f"./{LEAK_LINE}" in proc.stdout
        outputs.append((proc.stdout, proc.stderr))
    assert outputs[0] == outputs[1]  # the same output, in the same order, whatever -j


# ---------------------------------------------------------------------------------------------- valid but odd


def _cr_only(text: str) -> bytes:
    return text.replace("\n", "\r").encode()


ODD: dict[str, tuple[Callable[[], bytes], int]] = {
    # name -> (contents, expected number of CNL001 findings); these are valid Python
    "bom.py": (lambda: b"\xef\xbb\xbf" + LEAKY.encode(), 1),
    "bom_and_cookie.py": (lambda: b"\xef\xbb\xbf# -*- coding: utf-8 -*-\n" + LEAKY.encode(), 1),
    "latin1_cookie.py": (lambda: b"# -*- coding: latin-1 -*-\n" + LEAKY.encode() + b"s = '\xe9'\n", 1),
    "cr_only.py": (lambda: _cr_only(LEAKY), 1),
    "crlf.py": (lambda: LEAKY.replace("\n", "\r\n").encode(), 1),
    "empty.py": (lambda: b"", 0),
    "only_comment_no_newline.py": (lambda: b"# sqlite3", 0),
    "form_feed_and_tabs.py": (lambda: LEAKY.replace("\n\n\n", "\n\x0c\n\n").replace("    ", "\t").encode(), 1),
}


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_but_valid_files_are_checked(tmp_path: Path, name: str) -> None:
    make_bytes, expected = ODD[name]
    make(tmp_path, name, make_bytes())
    proc = run(name, cwd=tmp_path)
    assert proc.stderr == ""
    assert proc.stdout.count("CNL001") == expected, proc.stdout
    assert proc.returncode == (1 if expected else 0)


def test_five_megabyte_module(tmp_path: Path) -> None:
    unit = "def f{i}(a, b):\n    if a > b:\n        return a * {i}\n    return b - {i}\n\n\n"
    plain = "".join(unit.format(i=i) for i in range(70_000))
    data = (LEAKY + "\n\n" + plain)[: 5 * 1024 * 1024]
    data = data[: data.rindex("\n\n\n") + 1]
    make(tmp_path, "huge.py", data.encode())
    assert (tmp_path / "huge.py").stat().st_size > 4_900_000
    proc = run("huge.py", cwd=tmp_path)
    assert proc.stderr == ""
    assert "huge.py:5:12: CNL001" in proc.stdout
    assert proc.returncode == 1


def test_deep_but_parseable_nesting_never_escapes(tmp_path: Path) -> None:
    """Deep enough to parse, deep enough to stress recursive analysis: a finding, a CNL900 or one
    diagnostic; never a RecursionError."""
    bodies = {
        "elif_1000": "    if p == -1:\n        pass\n"
        + "".join(f"    elif p == {i}:\n        conn.close()\n" for i in range(1000)),
        "parens_190": f"    x = {nested(190, '(', 'conn', ')')}\n",
        "ifexp_1000": "    x = " + "conn if p else " * 1000 + "conn\n",
        "andor_20000": "    x = " + " and ".join(["conn"] * 20_000) + "\n",
        "lambda_500": "    x = " + "lambda: " * 500 + "conn\n",
        "subscripts_1000": "    x = conn" + "[0]" * 1000 + "\n",
        "blocks_98": "".join("    " * (d + 1) + f"if p > {d}:\n" for d in range(98)) + "    " * 99 + "conn.close()\n",
    }
    for name, body in bodies.items():
        text = f"import sqlite3\n\ndef f(p):\n    conn = sqlite3.connect(p)\n{body}    return 1\n"
        ast.parse(text)  # each is valid Python
        result = check_text(f"{name}.py", text, Options(), default_catalog())
        assert result.error is None or "nested too deeply" in result.error, (name, result.error)
        make(tmp_path, f"{name}.py", text.encode())
    proc = run(".", cwd=tmp_path)
    assert "Traceback" not in proc.stderr
    assert all(": error: " in line for line in proc.stderr.splitlines())


# ---------------------------------------------------------------------------------------------- paths


def test_broken_symlink(tmp_path: Path) -> None:
    (tmp_path / "broken.py").symlink_to(tmp_path / "nowhere.py")
    (tmp_path / "z_leaky.py").write_text(LEAKY)
    proc = run("broken.py", "z_leaky.py", cwd=tmp_path)
    assert_one_diagnostic(proc, "broken.py", "broken symlink")
    assert LEAK_LINE in proc.stdout
    # found by a directory walk too
    proc = run(".", cwd=tmp_path)
    assert_one_diagnostic(proc, "./broken.py", "broken symlink")


def test_path_that_does_not_exist(tmp_path: Path) -> None:
    (tmp_path / "z_leaky.py").write_text(LEAKY)
    proc = run("missing.py", "z_leaky.py", cwd=tmp_path)
    assert_one_diagnostic(proc, "missing.py", "no such file")
    assert LEAK_LINE in proc.stdout


def test_directory_named_like_a_module_is_walked_not_read(tmp_path: Path) -> None:
    """A folder called x.py is a folder: walked (as flake8 and Ruff do), never opened as a file."""
    (tmp_path / "x.py").mkdir()
    (tmp_path / "x.py" / "inner.py").write_text(LEAKY)
    (tmp_path / "empty.py").mkdir()
    proc = run("x.py", "empty.py", cwd=tmp_path)
    assert proc.stderr == ""
    assert "x.py/inner.py:5:12: CNL001" in proc.stdout
    assert proc.returncode == 1
    proc = run(".", cwd=tmp_path)
    assert proc.stderr == "" and proc.returncode == 1
    # and reading one as a file (a race, or the API) is one diagnostic, not a crash
    assert check_file(str(tmp_path / "empty.py"), Options()).error == "is a directory"


def test_non_python_files_named_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# My app\n\nIt uses sqlite3. Run `make`.\n")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (tmp_path / "notes.txt").write_text("Close the connection when done.\n")
    (tmp_path / "z_leaky.py").write_text(LEAKY)
    proc = run("README.md", "logo.png", "notes.txt", "z_leaky.py", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 3, proc.stderr
    assert lines[0].startswith("README.md: error: not a Python file:")
    assert lines[1].startswith("logo.png: error: contains a NUL byte")
    assert lines[2].startswith("notes.txt: error: not a Python file:")
    assert LEAK_LINE in proc.stdout


def test_extensionless_python_script_named_on_the_command_line_is_checked(tmp_path: Path) -> None:
    (tmp_path / "manage").write_text("#!/usr/bin/env python3\n" + LEAKY)
    proc = run("manage", cwd=tmp_path)
    assert proc.stderr == "" and proc.returncode == 1
    assert "manage:6:12: CNL001" in proc.stdout


def test_unreadable_file_chmod(tmp_path: Path) -> None:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("running as root, which reads a chmod-000 file anyway (the FIFO and /proc tests cover "
                    "files that cannot be read)")
    path = make(tmp_path, "secret.py", LEAKY.encode())
    path.chmod(0)
    try:
        (tmp_path / "z_leaky.py").write_text(LEAKY)
        proc = run("secret.py", "z_leaky.py", cwd=tmp_path)
        assert_one_diagnostic(proc, "secret.py", "Permission denied")
        assert LEAK_LINE in proc.stdout
    finally:
        path.chmod(0o644)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_not_read_and_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.py")
    (tmp_path / "z_leaky.py").write_text(LEAKY)
    for args in (("pipe.py", "z_leaky.py"), (".",)):
        proc = run(*args, cwd=tmp_path)
        name = "pipe.py" if args[0] == "pipe.py" else "./pipe.py"
        assert_one_diagnostic(proc, name, "not a regular file (a FIFO)")
        assert LEAK_LINE in proc.stdout


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux /proc")
def test_file_whose_read_fails(tmp_path: Path) -> None:
    """/proc/self/mem opens but reading offset 0 fails with EIO: an unreadable file even for root."""
    (tmp_path / "z_leaky.py").write_text(LEAKY)
    proc = run("/proc/self/mem", "z_leaky.py", cwd=tmp_path)
    assert_one_diagnostic(proc, "/proc/self/mem", "Input/output error")
    assert LEAK_LINE in proc.stdout


def test_a_file_that_names_no_database_api_is_not_parsed(tmp_path: Path) -> None:
    """The prefilter contract (issue 5): a module that names nothing the catalog can acquire is skipped
    unparsed, so its syntax errors are flake8's (E999) to report, not connlint's."""
    make(tmp_path, "broken.py", b"def f(:\n")
    make(tmp_path, "python2.py", b'print "x"\n')
    # names the driver, but calls nothing that can acquire (only a constant and an exception class)
    make(tmp_path, "types_only.py", b"import sqlite3\nERR = sqlite3.Error\ndef f(:\n")
    proc = run("broken.py", "python2.py", "types_only.py", cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


# ---------------------------------------------------------------------------------------------- flake8


def _flake8_survives(data: bytes) -> bool:
    """flake8 itself (not the plugin) dies on what its parser cannot build: RecursionError, MemoryError."""
    try:
        ast.parse(data)
    except (RecursionError, MemoryError):
        return False
    except (SyntaxError, ValueError):
        pass
    return True


def test_flake8_plugin_on_bad_input_never_crashes(tmp_path: Path) -> None:
    for name, (data, _) in BAD.items():
        if _flake8_survives(data):
            make(tmp_path, name, data)
    for name, (make_bytes, _) in ODD.items():
        make(tmp_path, name, make_bytes())
    (tmp_path / "z_leaky.py").write_text(LEAKY)
    proc = subprocess.run([sys.executable, "-m", "flake8", "--select=CNL,E9", "."], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert "connlint" not in proc.stderr, proc.stderr  # no plugin failure, no traceback through connlint
    assert "./z_leaky.py:5:12: CNL001" in proc.stdout
    assert "./syntax_error.py:2:" in proc.stdout and "E999" in proc.stdout  # flake8 reports these itself
    for name, (data, _) in {**BAD, **{n: (m(), 0) for n, (m, _) in ODD.items()}}.items():
        try:
            tree = ast.parse(data)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        lines = data.decode("utf-8", "replace").splitlines(keepends=True)
        list(Plugin(tree, str(tmp_path / name), lines).run())


# ---------------------------------------------------------------------------------------------- stdlib


@pytest.mark.slow
def test_standard_library_has_no_traceback() -> None:
    """The running Python's Lib/, test suite and its deliberately broken files included."""
    stdlib = sysconfig.get_paths()["stdlib"]
    proc = subprocess.run([sys.executable, "-m", "connlint", "check", "--format", "concise", "-j", "2", stdlib],
                          capture_output=True, text=True, timeout=900)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    bad = [line for line in lines if ": error: " not in line or "internal error" in line]
    assert bad == [], bad[:10]
    assert proc.returncode in (0, 1, 2)
    if lines:
        assert proc.returncode == 2


def _analyse_everything(path: str) -> str | None:
    """Worker: the whole analysis on one file, prefilter bypassed; an exception's one-line summary."""
    from connlint.checker import check_tree
    from connlint.files import UnreadableFile, read_source

    try:
        tree = ast.parse(read_source(path).text)
    except (UnreadableFile, SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # the CLI reports these as diagnostics (test above)
    try:
        check_tree(tree, Options(select=("CNL",)))
    except RecursionError:
        return None  # the CLI reports "nested too deeply"
    except Exception as exc:
        return f"{path}: {type(exc).__name__}: {exc}"
    return None


@pytest.mark.slow
def test_standard_library_analysed_whole_without_the_prefilter() -> None:
    """The prefilter skips most of Lib/: run the analysis itself on every file it can parse (~35 s on
    two cores)."""
    from concurrent.futures import ProcessPoolExecutor

    from connlint.files import discover

    paths = list(discover([sysconfig.get_paths()["stdlib"]]))
    assert len(paths) > 1000
    with ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        failures = [f for f in pool.map(_analyse_everything, paths, chunksize=16) if f]
    assert failures == []
