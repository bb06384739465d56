"""``connlint fix`` over many files uses worker processes like ``connlint check`` (``-j``): the output is
the same, in the same order, whatever the number of processes; only the main process writes, so Ctrl-C
leaves every file either as it was or fully fixed, and no temporary file behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from connlint.cli import main
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
UNFIXABLE = "import sqlite3\n\n\ndef g(path):\n    conn = sqlite3.connect(path)\n    return conn.cursor()\n"


def _leaky(n: int, functions: int = 1) -> str:
    """A module with ``functions`` fixable leaks; ``n`` makes each file's text (and diff) its own."""
    body = "".join(
        f"\n\ndef f{n}_{i}(path):\n    conn = sqlite3.connect(path)\n"
        f"    rows = conn.execute('SELECT {n}').fetchall()\n    conn.close()\n    return rows\n"
        for i in range(functions)
    )
    return "import sqlite3\nfrom contextlib import closing\n" + body


def _project(folder: Path) -> list[Path]:
    """Files of every kind, with names whose order differs from their sizes' order."""
    folder.mkdir()
    files = {
        "a_small.py": _leaky(1),
        "b_big.py": _leaky(2, functions=20),
        "c_unfixable.py": UNFIXABLE,
        "d_broken.py": "import sqlite3\ndef f(:\n",
        "e_clean.py": "x = 1\n",
        "f_mixed.py": _leaky(3, functions=3) + UNFIXABLE.split("\n", 1)[1],
        "g_undecodable.py": None,
        "h_leaky.py": _leaky(4, functions=2),
    }
    for name, text in files.items():
        path = folder / name
        if text is None:
            path.write_bytes(b"import sqlite3\nx = '\xff'\n")
        else:
            path.write_text(text)
    return sorted(folder.iterdir())


def test_diff_is_the_same_whatever_the_number_of_processes(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "p"
    _project(folder)
    outputs = []
    for jobs in ("-j1", "-j2", "-j3"):
        code = main(["fix", "--diff", jobs, str(folder)])
        captured = capsys.readouterr()
        outputs.append((code, captured.out, captured.err))
    assert outputs[0][0] == 2  # the broken and the undecodable file
    assert "+    with closing(sqlite3.connect(path)) as conn:" in outputs[0][1]
    assert outputs[1] == outputs[0] and outputs[2] == outputs[0]
    # file by file in the order of the paths
    order = [line.split(" ", 1)[1] for line in outputs[0][1].splitlines() if line.startswith("--- ")]
    assert order == sorted(order)


def test_in_place_with_processes_writes_what_one_process_writes(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    _project(one)
    _project(two)
    assert main(["fix", "-j1", str(one)]) == 2
    report_one = capsys.readouterr().out.replace(str(one), "P")
    assert main(["fix", "-j2", str(two)]) == 2
    report_two = capsys.readouterr().out.replace(str(two), "P")
    assert report_two == report_one
    for path in sorted(one.iterdir()):
        assert (two / path.name).read_bytes() == path.read_bytes(), path.name
    assert (two / "a_small.py").read_text() == fix_text(_leaky(1)).text != _leaky(1)
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_leaves_each_file_as_it_was_or_fully_fixed(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    # the first file is the largest, so it is fixed first and printed while the others are still to do
    originals = {f"m{i:03}.py": _leaky(i, functions=12 if i == 0 else 3) for i in range(40)}
    for name, text in originals.items():
        (folder / name).write_text(text)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # its own process group, which Ctrl-C in a terminal signals as a whole (the workers too)
    proc = subprocess.Popen([sys.executable, "-m", "connlint", "fix", "-j2", str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first file is written: interrupt in the middle of the run
    os.killpg(proc.pid, signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert proc.returncode in (130, 1), (proc.returncode, err)  # 1: it had already finished
    assert first.startswith(str(folder))
    assert [p.name for p in folder.iterdir() if p.name not in originals] == []  # no temporary file left
    changed = 0
    for name, text in originals.items():
        now = (folder / name).read_text()
        if now != text:
            changed += 1
            assert now == fix_text(text).text, name
    assert changed >= 1
