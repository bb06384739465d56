"""astroid inference of receivers the summaries cannot type (src/connlint/infer.py): what it answers,
what it refuses to guess, the ``inference`` setting, and the cache with it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from connlint.infer import MAX_LINES, ModuleInference

DB = textwrap.dedent(
    """\
    import sqlite3


    class Database:
        def __init__(self, url):
            self.url = url

        def session(self):
            return sqlite3.connect(self.url)


    class Borrowed:
        def __init__(self, url):
            self.conn = sqlite3.connect(url)

        def session(self):
            return self.conn

        def close(self):
            self.conn.close()


    def get_db(url):
        return Database(url)
    """
)
USER = textwrap.dedent(
    """\
    from shop.db import get_db


    def count(url):
        conn = get_db(url).session()
        return conn.execute("select 1").fetchone()
    """
)


def calls(source: str) -> list[ast.Call]:
    return [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]


def answer(source: str, text: str, tmp_path: Path) -> str | None:
    """The inferred class of the receiver of the attribute call spelled ``text``."""
    inference = ModuleInference(source, "m", str(tmp_path / "m.py"), [str(tmp_path)])
    (call,) = [c for c in calls(source) if ast.unparse(c) == text]
    return inference.receiver_class(call)


def test_the_receiver_of_a_chained_call_is_the_inner_calls_value(tmp_path: Path) -> None:
    source = "class A:\n    def b(self):\n        return B()\nclass B:\n    def c(self):\n        pass\nA().b().c()\n"
    # A().b().c() and A().b() start at the same place: the outer call's receiver is a B
    assert answer(source, "A().b().c()", tmp_path) == "m.B"
    assert answer(source, "A().b()", tmp_path) == "m.A"


def test_a_receiver_that_can_be_two_classes_or_anything_gets_no_answer(tmp_path: Path) -> None:
    source = textwrap.dedent(
        """\
        import random
        class A:
            def s(self): pass
        class B:
            def s(self): pass
        def either():
            return A() if random.random() else B()
        either().s()
        unknown_name.s()
        """
    )
    assert answer(source, "either().s()", tmp_path) is None
    assert answer(source, "unknown_name.s()", tmp_path) is None


def test_an_attribute_set_through_self_is_known_to_the_other_methods(tmp_path: Path) -> None:
    # infer.py records only the attribute assignments made through a method's first argument
    source = textwrap.dedent(
        """\
        class Database:
            def session(self):
                pass
        class Service:
            def __init__(self, url):
                self.db = Database()
            def run(this):
                this.db.session()
        svc = Service("u")
        svc.extra = Database()
        svc.extra.session()
        """
    )
    assert answer(source, "this.db.session()", tmp_path) == "m.Database"
    # set from outside the class: not recorded (it would make astroid import and build whatever the
    # target comes from), so not known: no answer rather than a guess
    assert answer(source, "svc.extra.session()", tmp_path) is None


def test_code_astroid_cannot_build_and_huge_modules_get_no_answer(tmp_path: Path) -> None:
    broken = ModuleInference("x = (\n", "m", None, [])
    call = ast.parse("a.b()").body[0].value  # type: ignore[attr-defined]
    assert broken.receiver_class(call) is None
    huge = "class A:\n    def s(self): pass\n" + "x = 1\n" * (MAX_LINES + 1) + "A().s()\n"
    assert answer(huge, "A().s()", tmp_path) is None


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    (tmp_path / "shop" / "db.py").write_text(DB)
    (tmp_path / "shop" / "user.py").write_text(USER)
    return tmp_path


def check(project: Path, *args: str) -> set[tuple[str, int, str]]:
    proc = subprocess.run([sys.executable, "-m", "connlint", "check", "--format", "json", *args, "."],
                          cwd=project, capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    return {(Path(i["path"]).name, i["line"], i["code"]) for i in json.loads(proc.stdout)}


def test_what_a_function_of_another_module_returns_is_inferred(shop: Path) -> None:
    assert check(shop, "--no-cache") == {("user.py", 5, "CNL001")}


def test_inference_off_leaves_the_receiver_unknown(shop: Path) -> None:
    (shop / "pyproject.toml").write_text('[tool.connlint]\ninference = "off"\n')
    assert check(shop, "--no-cache") == set()


def test_flake8_infers_the_same(shop: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "flake8", "--isolated", "--select", "CNL", "."], cwd=shop,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith("./shop/user.py:5:12: CNL001 connection 'conn' from get_db(url).session() ")
    proc = subprocess.run([sys.executable, "-m", "flake8", "--isolated", "--select", "CNL",
                           "--connlint-inference", "off", "."], cwd=shop, capture_output=True, text=True, timeout=120)
    assert proc.stdout == ""


def test_a_stored_result_that_used_inference_is_checked_again(shop: Path, tmp_path: Path) -> None:
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert check(shop, *cache) == {("user.py", 5, "CNL001")}
    # get_db now hands out an instance that keeps its connection: session() is borrowed
    (shop / "shop" / "db.py").write_text(DB.replace("return Database(url)", "return Borrowed(url)"))
    assert check(shop, *cache) == set() == check(shop, "--no-cache")


def test_astroid_is_not_asked_about_modules_and_super(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A receiver that is super(...) or a name bound only by "import x" (or a constant fallback) is no
    class's instance: astroid is not asked (it would build the module to find none)."""
    from connlint.catalog import default_catalog
    from connlint.checker import ModuleChecker, Options

    source = textwrap.dedent(
        """\
        import sqlite3
        import json
        try:
            import mariadb
        except ImportError:
            mariadb = None
        import other as db
        db = db.wrap()


        class Store(Base):
            def session(self):
                return sqlite3.connect("x")

            def f(self, url):
                super().session()
                super(Store, self).session()
                mariadb.session()
                json.session()
                db.session()
        """
    )
    asked: list[str] = []

    def receiver_class(self: ModuleInference, call: ast.Call) -> None:
        asked.append(ast.unparse(call.func))

    monkeypatch.setattr(ModuleInference, "receiver_class", receiver_class)
    checker = ModuleChecker(ast.parse(source), default_catalog(), Options(), source, module="m",
                            path=str(tmp_path / "m.py"))
    for call in calls(source):
        if call.func.attr == "session":  # type: ignore[attr-defined]
            checker._infer_receiver(call)
    assert asked == ["db.session"]  # rebound to something else: astroid may know it
