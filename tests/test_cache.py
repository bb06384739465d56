"""The on-disk cache: a second run reuses what did not change and reports exactly what a run without
the cache reports; a changed module re-checks itself and the modules that used its summary; broken,
foreign or unwritable caches never stop a run."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

import connlint.project as project_module
import connlint.runner as runner_module
from connlint import cli

DB = textwrap.dedent(
    """\
    import sqlite3


    def get_conn(path):
        return sqlite3.connect(path)
    """
)
NOT_A_FACTORY = textwrap.dedent(
    """\
    import sqlite3


    def get_conn(path):
        return str(path)
    """
)
SERVICE = textwrap.dedent(
    """\
    from shop.db import get_conn


    def count(path):
        conn = get_conn(path)
        return conn.execute("select 1").fetchone()
    """
)
# the same, in a module that also uses the driver itself (checked in the first round of a project run)
SERVICE_WITH_DRIVER = SERVICE + textwrap.dedent(
    """\


    def version():
        import contextlib
        import sqlite3

        with contextlib.closing(sqlite3.connect(":memory:")) as conn:
            return conn.execute("select sqlite_version()").fetchone()
    """
)
OTHER = textwrap.dedent(
    """\
    import sqlite3


    def leak(path):
        conn = sqlite3.connect(path)
        return conn.execute("select 1").fetchone()
    """
)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """shop/db.py has a factory, shop/service.py leaks what it returns, shop/other.py leaks on its own."""
    package = tmp_path / "proj" / "shop"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "db.py").write_text(DB)
    (package / "service.py").write_text(SERVICE)
    (package / "other.py").write_text(OTHER)
    return tmp_path / "proj"


class Spy:
    """What one in-process run analysed: files checked and modules summarised from their source."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.checked: Counter[str] = Counter()
        self.summarised: Counter[str] = Counter()
        check_text = runner_module._check_text
        compute = project_module.ProjectIndex._compute

        def spy_check_text(path: str, *args: object, **kwargs: object) -> object:
            self.checked[Path(path).name] += 1
            return check_text(path, *args, **kwargs)  # type: ignore[arg-type]

        def spy_compute(index: object, module: str, *args: object) -> object:
            self.summarised[module] += 1
            return compute(index, module, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(runner_module, "_check_text", spy_check_text)
        monkeypatch.setattr(project_module.ProjectIndex, "_compute", spy_compute)


def run(project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        *args: str) -> tuple[int, str, Spy]:
    """``connlint check --format json -j1 .`` in-process, as a fresh process would run it."""
    monkeypatch.chdir(project)
    project_module._PROJECTS.clear()  # a new process starts with no summaries in memory
    spy = Spy(monkeypatch)
    capsys.readouterr()
    code = cli.main(["check", "--format", "json", "-j1", *args, "."])
    out = capsys.readouterr().out
    monkeypatch.undo()
    return code, out, spy


def codes(out: str) -> set[tuple[str, int, str]]:
    return {(Path(i["path"]).name, i["line"], i["code"]) for i in json.loads(out)}


def entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.json") if not p.name.startswith(".tmp-"))


def test_second_run_reuses_everything_and_reports_the_same(shop: Path, tmp_path: Path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    code, first, spy = run(shop, capsys, monkeypatch, "--cache-dir", str(cache))
    assert code == 1
    assert codes(first) == {("service.py", 5, "CNL001"), ("other.py", 5, "CNL001")}
    assert spy.checked  # the cold run analysed files
    code2, second, spy2 = run(shop, capsys, monkeypatch, "--cache-dir", str(cache))
    assert (code2, second) == (code, first)
    assert not spy2.checked and not spy2.summarised
    _, uncached, _ = run(shop, capsys, monkeypatch, "--no-cache")
    assert uncached == first


@pytest.mark.parametrize("service", [SERVICE, SERVICE_WITH_DRIVER], ids=["wrapper-only", "with-driver"])
def test_changing_a_factory_changes_the_findings_of_its_users(shop: Path, tmp_path: Path, capsys, monkeypatch,
                                                              service: str):
    (shop / "shop" / "service.py").write_text(service)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    run(shop, capsys, monkeypatch, *cache)
    (shop / "shop" / "db.py").write_text(NOT_A_FACTORY)
    _, out, spy = run(shop, capsys, monkeypatch, *cache)
    assert codes(out) == {("other.py", 5, "CNL001")}  # get_conn no longer returns a connection
    assert "other.py" not in spy.checked  # it uses nothing from db.py
    if service == SERVICE_WITH_DRIVER:
        assert spy.checked["service.py"] >= 1  # its stored result used db.py's summary
    _, uncached, _ = run(shop, capsys, monkeypatch, "--no-cache")
    assert out == uncached

    (shop / "shop" / "db.py").write_text(DB)  # and back: the finding in service.py returns
    _, out, spy = run(shop, capsys, monkeypatch, *cache)
    assert codes(out) == {("service.py", 5, "CNL001"), ("other.py", 5, "CNL001")}
    assert "other.py" not in spy.checked
    _, uncached, _ = run(shop, capsys, monkeypatch, "--no-cache")
    assert out == uncached


def test_an_edit_that_keeps_the_summary_does_not_recheck_the_users(shop: Path, tmp_path: Path, capsys, monkeypatch):
    cache = ["--cache-dir", str(tmp_path / "cache")]
    _, before, _ = run(shop, capsys, monkeypatch, *cache)
    with open(shop / "shop" / "db.py", "a") as fh:
        fh.write("\n# a comment after the last function: the summary (lines included) is the same\n")
    _, after, spy = run(shop, capsys, monkeypatch, *cache)
    assert after == before
    assert "service.py" not in spy.checked and "other.py" not in spy.checked


def test_a_module_that_is_not_checked_is_summarised_once(shop: Path, tmp_path: Path, capsys, monkeypatch):
    """Checking one file reads the summary of the module it imports from the cache the second time."""
    (shop / "shop" / "service.py").write_text(SERVICE_WITH_DRIVER)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    _, first, spy = run(shop, capsys, monkeypatch, *cache, "shop/service.py")
    assert spy.summarised["shop.db"] >= 1
    assert ("service.py", 5, "CNL001") in codes(first)
    (shop / "shop" / "service.py").write_text(SERVICE_WITH_DRIVER + "\n\ndef more(path):\n    return get_conn(path)\n")
    _, second, spy = run(shop, capsys, monkeypatch, *cache, "shop/service.py")
    assert spy.checked["service.py"] >= 1  # it changed
    assert not spy.summarised  # shop.db did not
    assert codes(second) == codes(first)


CLOSER = "def close_quietly(c):\n    c.close()\n"
NOT_A_CLOSER = "def close_quietly(c):\n    return repr(c)\n"
CLOSED_BY_HELPER = textwrap.dedent(
    """\
    import sqlite3

    from shop.util import close_quietly


    def count(path):
        conn = sqlite3.connect(path)
        try:
            return conn.execute("select 1").fetchone()
        finally:
            close_quietly(conn)
    """
)


def test_a_helper_in_a_module_that_names_no_driver_is_followed_and_its_changes_seen(
        shop: Path, tmp_path: Path, capsys, monkeypatch):
    (shop / "shop" / "util.py").write_text(CLOSER)
    (shop / "shop" / "service.py").write_text(CLOSED_BY_HELPER)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    _, out, _ = run(shop, capsys, monkeypatch, *cache)
    assert codes(out) == {("other.py", 5, "CNL001")}
    _, again, spy = run(shop, capsys, monkeypatch, *cache)
    assert again == out and not spy.checked
    (shop / "shop" / "util.py").write_text(NOT_A_CLOSER)
    _, out, spy = run(shop, capsys, monkeypatch, *cache)
    assert codes(out) == {("service.py", 7, "CNL001"), ("other.py", 5, "CNL001")}
    assert "other.py" not in spy.checked
    _, uncached, _ = run(shop, capsys, monkeypatch, "--no-cache")
    assert out == uncached


@pytest.mark.parametrize("garbage", [b"", b"{", b"\x00\xff\xfe", b"[]", b'{"format": 999}', b"null"])
def test_corrupt_entries_are_ignored(shop: Path, tmp_path: Path, capsys, monkeypatch, garbage: bytes):
    cache = tmp_path / "cache"
    _, first, _ = run(shop, capsys, monkeypatch, "--cache-dir", str(cache))
    for entry in entries(cache):
        entry.write_bytes(garbage)
    code, second, spy = run(shop, capsys, monkeypatch, "--cache-dir", str(cache))
    assert (code, second) == (1, first)
    assert spy.checked  # nothing was usable
    _, third, spy = run(shop, capsys, monkeypatch, "--cache-dir", str(cache))
    assert third == first and not spy.checked  # and the entries were written again


def test_entries_of_the_right_format_but_the_wrong_shape_are_ignored(shop: Path, tmp_path: Path, capsys,
                                                                   monkeypatch):
    cache = tmp_path / "cache"
    _, first, _ = run(shop, capsys, monkeypatch, "--cache-dir", str(cache))
    for entry in entries(cache):
        data = json.loads(entry.read_text())
        data["result"] = {"kind": "checked", "trace": 5, "findings": [[1]], "summary": {"factories": 3},
                          "module": "shop.service", "root": str(shop), "exports": None}
        entry.write_text(json.dumps(data))
    code, second, _ = run(shop, capsys, monkeypatch, "--cache-dir", str(cache))
    assert (code, second) == (1, first)


def test_truncated_entry_in_the_middle_of_a_run(shop: Path, tmp_path: Path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    _, first, _ = run(shop, capsys, monkeypatch, "--cache-dir", str(cache))
    for entry in entries(cache):
        text = entry.read_bytes()
        entry.write_bytes(text[: len(text) // 2])
    _, second, _ = run(shop, capsys, monkeypatch, "--cache-dir", str(cache))
    assert second == first


def test_no_cache_reads_and_writes_nothing(shop: Path, tmp_path: Path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    _, first, _ = run(shop, capsys, monkeypatch, "--cache-dir", str(cache))
    for entry in entries(cache):
        entry.write_text("{}")
    mtimes = {p: p.stat().st_mtime_ns for p in entries(cache)}
    _, second, spy = run(shop, capsys, monkeypatch, "--cache-dir", str(cache), "--no-cache")
    assert second == first
    assert spy.checked
    assert {p: p.stat().st_mtime_ns for p in entries(cache)} == mtimes

    monkeypatch.setenv("CONNLINT_NO_CACHE", "1")
    other = tmp_path / "other-cache"
    _, third, _ = run(shop, capsys, monkeypatch, "--cache-dir", str(other))
    assert third == first and not other.exists()


def test_a_cache_folder_that_cannot_be_written_is_no_error(shop: Path, tmp_path: Path, capsys, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    _, uncached, _ = run(shop, capsys, monkeypatch, "--no-cache")
    code, out, _ = run(shop, capsys, monkeypatch, "--cache-dir", str(blocker / "cache"))
    assert (code, out) == (1, uncached)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_cache_folder_is_no_error(shop: Path, tmp_path: Path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    _, first, _ = run(shop, capsys, monkeypatch, "--cache-dir", str(cache))
    shutil.rmtree(cache)
    cache.mkdir()
    cache.chmod(0o500)
    try:
        code, out, _ = run(shop, capsys, monkeypatch, "--cache-dir", str(cache))
    finally:
        cache.chmod(0o700)
    assert (code, out) == (1, first)


def test_failing_writes_turn_writing_off(shop: Path, tmp_path: Path, capsys, monkeypatch):
    """As on a read-only disk (root ignores folder permissions, so the write itself fails here)."""
    calls = []

    def refuse(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise PermissionError(13, "Permission denied")

    _, uncached, _ = run(shop, capsys, monkeypatch, "--no-cache")
    monkeypatch.chdir(shop)
    project_module._PROJECTS.clear()
    monkeypatch.setattr(os, "replace", refuse)
    capsys.readouterr()
    code = cli.main(["check", "--format", "json", "-j1", "--cache-dir", str(tmp_path / "cache"), "."])
    out = capsys.readouterr().out
    monkeypatch.undo()
    assert (code, out) == (1, uncached)
    assert len(calls) == 1  # tried once, then no more


def test_default_folder_is_at_the_project_root_and_ignores_itself(shop: Path, capsys, monkeypatch):
    monkeypatch.delenv("CONNLINT_CACHE_DIR", raising=False)
    (shop / "pyproject.toml").write_text("[tool.connlint]\n")
    run(shop / "shop", capsys, monkeypatch)  # started in a subfolder: the root is the config's folder
    folder = shop / ".connlint_cache"
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (folder / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert entries(folder)
    assert not (shop / "shop" / ".connlint_cache").exists()


def test_cache_dir_setting_is_relative_to_the_config(shop: Path, capsys, monkeypatch):
    monkeypatch.delenv("CONNLINT_CACHE_DIR", raising=False)
    (shop / "pyproject.toml").write_text('[tool.connlint]\ncache-dir = "build/lint-cache"\n')
    run(shop / "shop", capsys, monkeypatch)
    assert entries(shop / "build" / "lint-cache")
    assert not (shop / ".connlint_cache").exists()


def test_cache_dir_must_be_a_folder_name(shop: Path, capsys, monkeypatch):
    (shop / "pyproject.toml").write_text("[tool.connlint]\ncache-dir = 5\n")
    monkeypatch.chdir(shop)
    assert cli.main(["check", "."]) == 2
    assert "[tool.connlint] 'cache-dir': expected a folder name, got 5" in capsys.readouterr().err


def test_flake8_plugin_reads_summaries_from_the_cache(shop: Path, tmp_path: Path, capsys, monkeypatch):
    from connlint.flake8_plugin import Plugin

    monkeypatch.setenv("CONNLINT_CACHE_DIR", str(tmp_path / "cache"))
    _, out, _ = run(shop, capsys, monkeypatch)
    monkeypatch.setenv("CONNLINT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(shop)  # messages name other files relative to the working folder: part of the key
    project_module._PROJECTS.clear()
    spy = Spy(monkeypatch)
    path = shop / "shop" / "service.py"
    lines = path.read_text().splitlines(keepends=True)
    found = list(Plugin(ast.parse("".join(lines)), str(path), lines).run())
    assert [(line, text.split()[0]) for line, _, text, _ in found] == [(5, "CNL001")]
    assert not spy.summarised  # shop.db came from the cache the CLI wrote
    assert ("service.py", 5, "CNL001") in codes(out)


def test_workers_writing_at_once(shop: Path, tmp_path: Path):
    """Several processes (as -j workers or flake8 jobs) fill the same cache at the same time."""
    for i in range(12):
        (shop / "shop" / f"extra{i}.py").write_text(SERVICE.replace("count", f"count{i}"))
    env = {**os.environ, "CONNLINT_CACHE_DIR": str(tmp_path / "cache")}
    argv = [sys.executable, "-m", "connlint", "check", "--format", "json", "-j2", "."]
    procs = [subprocess.Popen(argv, cwd=shop, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = [p.communicate(timeout=300) for p in procs]
    uncached = subprocess.run([*argv, "--no-cache"], cwd=shop, env=env, capture_output=True, text=True, timeout=300)
    assert all(err == "" for _, err in results)
    assert {out for out, _ in results} == {uncached.stdout}
    again = subprocess.run(argv, cwd=shop, env=env, capture_output=True, text=True, timeout=300)
    assert again.stdout == uncached.stdout
    assert not [p for p in (tmp_path / "cache").rglob(".tmp-*")]  # no temporary file left behind


def test_contexts_no_run_used_for_a_month_are_removed(shop: Path, tmp_path: Path, capsys, monkeypatch):
    import time

    from connlint.cache import Cache
    from connlint.catalog import default_catalog

    cache = tmp_path / "cache"
    run(shop, capsys, monkeypatch, "--cache-dir", str(cache))  # creates the cache
    run(shop, capsys, monkeypatch, "--cache-dir", str(cache))  # finds it, and marks its context used
    monkeypatch.chdir(shop)  # the context depends on the working directory
    current = Cache(cache).context_dir(default_catalog())
    assert (current / ".last-used").is_file()
    month_ago = time.time() - 31 * 86400
    old = cache / "0.0.1" / "0123456789abcdef0123"  # an older connlint's context
    recent = current.parent / "fedcba9876543210fedc"  # another working directory's, used last week
    for folder, when in ((old, month_ago), (recent, time.time() - 7 * 86400)):
        (folder / "ab").mkdir(parents=True)
        (folder / "ab" / "entry.json").write_text("{}", encoding="utf-8")
        (folder / ".last-used").touch()
        os.utime(folder / ".last-used", (when, when))
    os.utime(current / ".last-used", (month_ago, month_ago))  # this run's own: marked again, kept
    _, out, _ = run(shop, capsys, monkeypatch, "--cache-dir", str(cache))
    assert not old.exists() and not old.parent.exists()
    assert recent.is_dir() and current.is_dir()
    assert (current / ".last-used").stat().st_mtime > month_ago + 86400
    assert codes(out) == {("service.py", 5, "CNL001"), ("other.py", 5, "CNL001")}


def test_pruning_touches_only_a_folder_connlint_made_its_cache(tmp_path: Path) -> None:
    import time

    from connlint.cache import Cache
    from connlint.catalog import default_catalog

    home = tmp_path / "home"  # --cache-dir pointed at a folder of the user's
    old = home / "photos" / "0123456789abcdef0123"
    old.mkdir(parents=True)
    month_ago = time.time() - 40 * 86400
    os.utime(old, (month_ago, month_ago))
    Cache(home).prune(default_catalog())
    assert old.is_dir()
    (home / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n", encoding="utf-8")
    Cache(home).prune(default_catalog())  # another tool's cache
    assert old.is_dir()
