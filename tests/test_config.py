"""[tool.connlint] configuration: discovery, every key, errors, and custom resources."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from connlint.config import SETTINGS, ConfigError, config_from_table, markdown_reference

LEAKY = textwrap.dedent(
    """\
    import sqlite3


    def count(path):
        conn = sqlite3.connect(path)
        return conn.execute("select 1").fetchone()
    """
)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "connlint", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def codes(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [item["code"] for item in json.loads(proc.stdout)]


def project(tmp_path: Path, table: str, files: dict[str, str] | None = None) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n\n[tool.connlint]\n" + textwrap.dedent(table))
    for name, text in (files or {"app/db.py": LEAKY}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_config_is_found_by_walking_up_from_the_checked_path(tmp_path: Path) -> None:
    root = project(tmp_path, 'ignore = ["CNL001"]\n')
    # run from elsewhere: discovery starts at the checked path, not the working directory
    proc = run("check", "--format", "json", str(root / "app" / "db.py"), cwd=Path("/"))
    assert proc.returncode == 0 and codes(proc) == [], proc.stderr


def test_isolated_ignores_the_file_and_config_names_one(tmp_path: Path) -> None:
    root = project(tmp_path, 'ignore = ["CNL001"]\n')
    assert codes(run("check", "--format", "json", "--isolated", "app", cwd=root)) == ["CNL001"]
    other = tmp_path / "other.toml"
    other.write_text("[tool.connlint]\nselect = ['CNL002']\n")
    assert codes(run("check", "--format", "json", "--config", str(other), "app", cwd=root)) == []


def test_command_line_select_overrides_the_file(tmp_path: Path) -> None:
    root = project(tmp_path, 'select = ["CNL002"]\n')
    assert codes(run("check", "--format", "json", "app", cwd=root)) == []
    assert codes(run("check", "--format", "json", "--select", "CNL001", "app", cwd=root)) == ["CNL001"]


def test_per_file_ignores_and_exclude(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
        exclude = ["build"]
        [tool.connlint.per-file-ignores]
        "tests/*" = ["CNL0"]
        """,
        {"app/db.py": LEAKY, "tests/test_db.py": LEAKY, "build/gen.py": LEAKY},
    )
    proc = run("check", "--format", "json", ".", cwd=root)
    assert [(i["path"], i["code"]) for i in json.loads(proc.stdout)] == [("./app/db.py", "CNL001")]
    # a file named on the command line is checked unless --force-exclude (pre-commit) applies excludes
    assert codes(run("check", "--format", "json", "build/gen.py", cwd=root)) == ["CNL001"]
    assert codes(run("check", "--format", "json", "--force-exclude", "build/gen.py", cwd=root)) == []


def test_strictness_knobs(tmp_path: Path) -> None:
    src = (
        "import sqlite3\nCONN = sqlite3.connect('x')\n\ndef f(p):\n    c = sqlite3.connect(p)\n    c.execute('x')\n"
        "    c.close()\n"
    )
    root = project(tmp_path, "exception-paths = false\nmodule-level-connections = true\n", {"m.py": src})
    assert codes(run("check", "--format", "json", "m.py", cwd=root)) == ["CNL901"]
    root2 = project(tmp_path / "b", "", {"m.py": src})
    assert codes(run("check", "--format", "json", "m.py", cwd=root2)) == ["CNL101"]


def test_unknown_calls_hand_off(tmp_path: Path) -> None:
    src = "import sqlite3\n\ndef f(p):\n    c = sqlite3.connect(p)\n    register(c)\n"
    root = project(tmp_path, "", {"m.py": src})
    assert codes(run("check", "--format", "json", "m.py", cwd=root)) == ["CNL001"]
    root2 = project(tmp_path / "b", 'unknown-calls = "hand-off"\n', {"m.py": src})
    assert codes(run("check", "--format", "json", "m.py", cwd=root2)) == []


def test_custom_resources_and_release_helpers(tmp_path: Path) -> None:
    app = textwrap.dedent(
        """\
        from myapp.db import Database, get_conn, put_conn


        def leaks(uid):
            conn = get_conn()
            return conn.query(uid)


        def returns_it(uid):
            conn = get_conn()
            try:
                return conn.query(uid)
            finally:
                put_conn(conn)


        def session_leak(url):
            s = Database(url).session()
            s.add(1)


        def session_ok(url):
            with Database(url).session() as s:
                s.add(1)
        """
    )
    root = project(
        tmp_path,
        """
        [[tool.connlint.resources]]
        api = "myapp.db.get_conn"
        kind = "connection"
        release = []
        context-manager = "none"
        release-helpers = ["myapp.db.put_conn"]

        [[tool.connlint.resources]]
        api = "myapp.db.Database.session"
        kind = "session"
        context-manager = "closes"
        """,
        {"svc.py": app},
    )
    proc = run("check", "--format", "json", "svc.py", cwd=root)
    assert [(i["line"], i["code"]) for i in json.loads(proc.stdout)] == [(5, "CNL001"), (18, "CNL001")], proc.stderr
    assert "connection 'conn' from myapp.db.get_conn()" in proc.stdout


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('selec = ["CNL001"]\n', "unknown key 'selec' (did you mean 'select'?)"),
        ('select = "CNL001,E501"\n', "unknown rule code or prefix 'E501'"),
        ("ignore = 3\n", "'ignore': expected a list of strings, got an integer"),
        ('unknown-calls = "keep"\n', "'unknown-calls': expected one of 'borrow', 'hand-off', got 'keep'"),
        ("analysis-budget = -1\n", "'analysis-budget': expected a positive integer"),
        ("exception-paths = 1\n", "'exception-paths': expected true or false"),
        ('[[tool.connlint.resources]]\napi = "get_conn"\n', "'api' must be a qualified name"),
        ('[[tool.connlint.resources]]\napi = "a.b"\ncontext-manager = "shuts"\n',
         "'context-manager' must be one of"),
        ('[[tool.connlint.resources]]\napi = "a.b"\nclose = ["x"]\n', "unknown key(s) close"),
    ],
)
def test_bad_configuration_is_one_clear_error_and_exit_2(tmp_path: Path, table: str, message: str) -> None:
    root = project(tmp_path, table)
    proc = run("check", "app", cwd=root)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert str(root / "pyproject.toml") in proc.stderr
    assert message in proc.stderr, proc.stderr


def test_broken_toml_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.connlint\nselect = 1\n")
    proc = run("check", "--config", str(tmp_path / "pyproject.toml"), ".", cwd=tmp_path)
    assert proc.returncode == 2 and "not valid TOML" in proc.stderr


def test_every_setting_is_documented() -> None:
    page = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert markdown_reference() in page, (
        "regenerate the table: python -c 'from connlint.config import markdown_reference as m; print(m())'"
    )
    for setting in SETTINGS:
        assert f"`{setting.name}`" in page


def test_config_from_table_rejects_wrong_types_directly() -> None:
    with pytest.raises(ConfigError, match="per-file-ignores"):
        config_from_table({"per-file-ignores": ["x"]}, None)
