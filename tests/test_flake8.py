"""The flake8 plugin reports the same findings as the CLI, through a real ``flake8`` process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from layouts import src_and_tests

CASES = Path(__file__).parent / "fixtures" / "cases"


def run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.stdout


def test_flake8_and_cli_agree_on_every_fixture(tmp_path: Path) -> None:
    files = sorted(str(p) for p in CASES.glob("*.py"))
    assert files
    flake8_out = run([sys.executable, "-m", "flake8", "--isolated", "--select", "CNL", *files], tmp_path)
    cli_out = run([sys.executable, "-m", "connlint", "check", "--format", "concise", "--select", "CNL", *files],
                  tmp_path)
    assert sorted(flake8_out.splitlines()) == sorted(cli_out.splitlines())
    assert flake8_out.strip(), "the fixtures contain leaks: flake8 must report some"


def test_flake8_opt_in_code_and_noqa(tmp_path: Path) -> None:
    mod = tmp_path / "m.py"
    mod.write_text(
        "import sqlite3\n"
        "CONN = sqlite3.connect('x.db')\n"
        "def f(p):\n"
        "    c = sqlite3.connect(p)\n"
        "def g(p):\n"
        "    c = sqlite3.connect(p)  # noqa: CNL001\n"
    )
    out = run([sys.executable, "-m", "flake8", "--isolated", "--select", "CNL0", str(mod)], tmp_path)
    assert [line.split(": ", 1)[1][:6] for line in out.splitlines()] == ["CNL001"]
    assert ":4:9:" in out
    out = run([sys.executable, "-m", "flake8", "--isolated", str(mod)], tmp_path)
    assert "CNL901" not in out and "CNL001" in out  # opt-in: default-ignored
    out = run([sys.executable, "-m", "flake8", "--isolated", "--extend-select", "CNL901", str(mod)], tmp_path)
    assert "CNL901" in out


def test_plugin_is_registered() -> None:
    proc = subprocess.run([sys.executable, "-m", "flake8", "--version"], capture_output=True, text=True)
    assert "connlint" in proc.stdout


def test_flake8_reads_connlint_options_from_its_config_and_pyproject(tmp_path: Path) -> None:
    src = "import sqlite3\n\n\ndef f(p):\n    c = sqlite3.connect(p)\n    register(c)\n"
    (tmp_path / "m.py").write_text(src)
    base = [sys.executable, "-m", "flake8", "--select", "CNL", "m.py"]
    assert "CNL001" in run(base, tmp_path)
    (tmp_path / "setup.cfg").write_text("[flake8]\nconnlint-unknown-calls = hand-off\n")
    assert run(base, tmp_path) == ""
    (tmp_path / "setup.cfg").unlink()
    # pyproject.toml is the fallback, and declares custom resources
    (tmp_path / "pyproject.toml").write_text(
        '[tool.connlint]\nunknown-calls = "hand-off"\n'
        '[[tool.connlint.resources]]\napi = "myapp.db.get_conn"\n'
    )
    assert run(base, tmp_path) == ""
    (tmp_path / "svc.py").write_text("from myapp.db import get_conn\n\n\ndef f():\n    c = get_conn()\n    c.q()\n")
    out = run([sys.executable, "-m", "flake8", "--select", "CNL", "svc.py"], tmp_path)
    assert out.startswith("svc.py:5:9: CNL001 connection 'c' from myapp.db.get_conn() is never closed")


def test_flake8_knows_every_root_of_its_run(tmp_path: Path) -> None:
    """src/ and tests/ layout: a test module (root tests/) leaks what a factory of the package under
    src/ returns. flake8 checks one file at a time but is given both folders, as the CLI is."""
    src_and_tests(tmp_path)
    for jobs in ("-j1", "-j2"):
        flake8_out = run([sys.executable, "-m", "flake8", "--isolated", jobs, "--select", "CNL", "src", "tests"],
                         tmp_path)
        cli_out = run([sys.executable, "-m", "connlint", "check", "--no-cache", jobs, "--format", "concise",
                       "src", "tests"], tmp_path)
        assert sorted(flake8_out.splitlines()) == sorted(cli_out.splitlines())
        assert flake8_out.startswith("tests/test_orders.py:5:12: CNL001 connection 'conn' from get_conn() ")
