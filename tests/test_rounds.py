"""The rounds of a project run (project.check_project): which files a round checks again, and which
summaries it keeps from the round before."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import connlint.runner as runner
from connlint.catalog import default_catalog
from connlint.checker import Options
from connlint.project import (
    UNKNOWN_SKIPS,
    _spelling,
    check_project,
    declare_roots,
    project_for,
    skip_matters,
)

PACKAGE = {
    "pkg/__init__.py": "",
    "pkg/db.py": "import sqlite3\n\n\ndef connect_db(path):\n    return sqlite3.connect(path)\n",
    # names no driver: skipped by round 0, checked by round 1 (it spells connect_db)
    "pkg/wrap.py": "from .db import connect_db\n\n\ndef get_conn():\n    return connect_db('y')\n",
    "pkg/util.py": "def helper():\n    return 1\n",
    # checked by round 0; it spells connect_db, but the only module its check skipped (util) stays
    # skipped whatever is known: round 1 has no reason to check it again
    "pkg/plain.py": (
        "import sqlite3\nfrom . import util\n\n# see connect_db\n\n\ndef f():\n    util.helper()\n"
        "    conn = sqlite3.connect('x')\n    conn.close()\n"
    ),
    # checked by round 0, when wrap.get_conn is not known to be a factory (wrap.py names no driver);
    # once round 1 has found it, round 2 checks it again and finds the leak
    "pkg/user.py": (
        "import sqlite3\nfrom . import wrap\n\n\ndef use():\n    conn = wrap.get_conn()\n"
        "    conn.execute('select 1')\n\n\ndef other():\n    return sqlite3.connect('z')\n"
    ),
}


_CHECK_PATHS = runner.check_paths


@pytest.fixture
def package(tmp_path: Path) -> Path:
    for name, text in PACKAGE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def _rounds(package: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[list[str]], list[runner.FileResult]]:
    monkeypatch.chdir(package)
    checked: list[list[str]] = []
    original = _CHECK_PATHS

    def check_paths(paths, options, jobs=0, config=None, force=False, **kwargs):  # type: ignore[no-untyped-def]
        results = original(paths, options, jobs, config, force, **kwargs)
        checked.append(sorted(r.path.replace(os.sep, "/") for r in results if not r.prefiltered))
        return results

    monkeypatch.setattr(runner, "check_paths", check_paths)
    paths = sorted(str(p.relative_to(package)) for p in package.rglob("*.py"))
    return checked, check_project(paths, Options(), 1, None)


def _spy_on_summaries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The modules whose summaries are computed from now on (not taken from a check or the store)."""
    from connlint.project import ProjectIndex

    computed: list[str] = []
    compute = ProjectIndex._compute

    def spy(self, module, *args):  # type: ignore[no-untyped-def]
        computed.append(module)
        return compute(self, module, *args)

    monkeypatch.setattr(ProjectIndex, "_compute", spy)
    return computed


def test_a_round_checks_again_only_files_whose_skipped_modules_can_answer_now(package, monkeypatch):
    checked, results = _rounds(package, monkeypatch)
    assert checked[0] == ["pkg/db.py", "pkg/plain.py", "pkg/user.py"]
    assert checked[1] == ["pkg/wrap.py"]  # not plain.py, though it spells connect_db
    assert checked[2] == ["pkg/user.py"]  # get_conn is known now
    assert len(checked) == 3
    found = {(r.path.replace(os.sep, "/"), f.line, f.code) for r in results for f in r.findings}
    assert found == {("pkg/user.py", 6, "CNL001")}


def test_what_a_check_skipped_is_part_of_its_result(package, monkeypatch):
    _, results = _rounds(package, monkeypatch)
    by_path = {r.path.replace(os.sep, "/"): r for r in results}
    assert by_path["pkg/wrap.py"].prefiltered is False
    plain = by_path["pkg/plain.py"].skipped
    assert plain is not None and os.path.abspath("pkg/util.py") in {s.split("\0")[1] for s in plain}
    assert by_path["pkg/db.py"].skipped == frozenset()


def test_a_later_round_keeps_the_summaries_its_names_cannot_change(package, monkeypatch):
    monkeypatch.chdir(package)
    declare_roots({str(package)})
    catalog = default_catalog()
    first = project_for(catalog, Options(project_exports=frozenset()))
    db = first.summary("pkg.db")
    assert db is not None and "connect_db" in db.factories
    assert first.summary("pkg.wrap") is None  # names no driver, and no known factory
    later = project_for(catalog, Options(project_exports=frozenset({"connect_db"})))
    assert later is first
    assert later.remembered("pkg.db") is db  # kept, not computed again
    wrap = later.summary("pkg.wrap")
    assert wrap is not None and "get_conn" in wrap.factories
    # a run that knows less starts over
    assert project_for(catalog, Options(project_exports=frozenset())).remembered("pkg.wrap") is None


def test_skip_matters() -> None:
    words = {"/p/wrap.py": frozenset({"get_conn", "connect_db", "import"}), "/p/user.py": frozenset({"get_conn"}),
             "/p/other.py": frozenset({"x"})}
    names = frozenset({"connect_db"})
    # the module is read with these names, but cannot have get_conn as a factory yet
    assert not skip_matters("get_conn\0/p/wrap.py\0/p/user.py", names, words.get)
    assert skip_matters("get_conn\0/p/wrap.py\0/p/user.py", names | {"get_conn"}, words.get)
    # a module that spells none of the names stays skipped
    assert not skip_matters("x\0/p/other.py\0/p/user.py", names, words.get)
    # a question about the whole module: only a name both files spell counts
    assert not skip_matters("\0/p/wrap.py\0/p/user.py", names, words.get)
    assert skip_matters("\0/p/wrap.py\0/p/user.py", frozenset({"get_conn"}), words.get)
    # words not known: it may matter
    assert skip_matters("get_conn\0/p/gone.py\0/p/user.py", names, words.get)
    assert skip_matters(UNKNOWN_SKIPS, names, words.get)


def test_a_skipped_module_matters_only_if_it_can_reach_the_name(tmp_path: Path) -> None:
    from connlint.project import _Reach

    for name, text in {
        "app/__init__.py": "",
        "app/options.py": "connection = None  # the word only\n",
        "app/wrap.py": "from dbkit import open_connection\n\nconnection = open_connection\n",
        "app/rel.py": "from .wrap import connection\n",
        "lib/dbkit/__init__.py": "",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    # 'connection': a factory of dbkit (a package of another root of the run), and a factory method
    # of Pool in a third one
    reach = _Reach({f"{tmp_path / 'lib'}|dbkit.core.connection", f"{tmp_path / 'x'}|other.Pool.connection"})
    words = {str(tmp_path / "app" / n): frozenset({"connection", "import"})
             for n in ("options.py", "wrap.py", "rel.py")}
    names = frozenset({"connection", "Pool"})
    asker = str(tmp_path / "app" / "user.py")
    words[asker] = frozenset({"connection"})

    def matters(module: str, key: str = "") -> bool:
        return skip_matters(f"{key}\0{tmp_path / 'app' / module}\0{asker}", names, words.get, reach)

    assert not matters("options.py")  # spells it, imports nothing that has it
    assert matters("wrap.py")  # imports dbkit
    assert not matters("rel.py")  # a relative import, but in another root than both names
    assert reach(str(tmp_path / "app" / "wrap.py"), ["Pool"]) is False  # the class name counts too
    assert matters("rel.py", "connection") is False
    assert skip_matters(f"\0{tmp_path / 'app' / 'options.py'}\0{asker}", names, words.get)  # no reach: it may
    same_root = _Reach({f"{tmp_path}|app.db.connection"})
    assert skip_matters(f"\0{tmp_path / 'app' / 'rel.py'}\0{asker}", names, words.get, same_root)


def test_spelling_finds_whole_names_only() -> None:
    pattern = _spelling([b"connect", b"connection", b"db", "\u00e9_x".encode()])
    assert pattern.findall(b"x = connect(1); connection.db") == [b"connect", b"connection", b"db"]
    assert pattern.findall(b"connections reconnect db_x xdb") == []
    assert pattern.findall("y = \u00e9_x + a\u00e9_x".encode()) == ["\u00e9_x".encode()]
    assert _spelling([]).search(b"anything") is None


def test_a_warm_run_knows_what_the_cold_run_skipped(package, monkeypatch, tmp_path_factory):
    from connlint.cache import Cache
    from connlint.project import use_cache

    cache = Cache(tmp_path_factory.mktemp("cache"))
    use_cache(cache)
    try:
        cold_rounds, cold = _rounds(package, monkeypatch)
        warm_rounds, warm = _rounds(package, monkeypatch)
    finally:
        use_cache(None)
    assert warm_rounds == cold_rounds  # the same files in each round: the stored results say why
    assert [(r.path, r.findings, r.skipped) for r in warm] == [(r.path, r.findings, r.skipped) for r in cold]


def test_map_paths_in_workers_keeps_the_order() -> None:
    paths = [f"/x/{i}.py" for i in range(300)]
    assert runner.map_paths(os.path.basename, paths, 2, None) == [f"{i}.py" for i in range(300)]
    assert runner.map_paths(os.path.basename, paths[:3], 2, None) == ["0.py", "1.py", "2.py"]


def test_the_workers_of_a_run_share_the_summaries_they_computed(package, monkeypatch, tmp_path_factory):
    from connlint.project import ProjectIndex, use_run_store

    store = tmp_path_factory.mktemp("store")
    monkeypatch.chdir(package)
    catalog = default_catalog()
    round0 = Options(project_exports=frozenset())
    use_run_store(str(store))
    try:
        db = ProjectIndex(catalog, round0, roots={str(package)}).summary("pkg.db")  # one worker
        assert db is not None and "connect_db" in db.factories
        computed = _spy_on_summaries(monkeypatch)
        other = ProjectIndex(catalog, round0, roots={str(package)}).summary("pkg.db")  # the other
        assert other is not None and other.factories.keys() == db.factories.keys() and computed == []
        # a later round knows other names: its summaries are its own
        ProjectIndex(catalog, Options(project_exports=frozenset({"connect_db"})), roots={str(package)}).summary(
            "pkg.db")
        assert computed == ["pkg.db"]
        for entry in store.iterdir():  # a damaged entry is no answer
            entry.write_bytes(b"not a pickle")
        assert ProjectIndex(catalog, round0, roots={str(package)}).summary("pkg.db") is not None
        assert computed == ["pkg.db", "pkg.db"]
    finally:
        use_run_store(None)


def test_imported_modules_are_read_off_the_import_lines(tmp_path: Path) -> None:
    from connlint.project import imported_modules

    (tmp_path / "app" / "sub").mkdir(parents=True)
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "sub" / "__init__.py").write_text("")
    views = str(tmp_path / "app" / "sub" / "views.py")
    text = (
        "from . import db, models as m\nfrom ..core import x\nimport os, a.b as c\n"
        "if True:\n    from .x.y import (z,\n        w)\nfrom ... import beyond\ns = 'import no'\n"
    )
    assert imported_modules(text, views) == (
        "a.b", "app.core", "app.core.x", "app.sub", "app.sub.db", "app.sub.models", "app.sub.x.y", "app.sub.x.y.z",
        "os",
    )
    init = str(tmp_path / "app" / "sub" / "__init__.py")  # a package's own relative imports
    assert imported_modules("from .views import f\n", init) == ("app.sub.views", "app.sub.views.f")


def test_dependencies_first(tmp_path: Path) -> None:
    from connlint.project import dependencies_first

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "__init__.py").write_text("")
    sizes = {"a": 10, "b": 20, "c": 30, "d": 40, "e": 50, "f": 60}
    path = {name: str(tmp_path / "p" / f"{name}.py") for name in sizes}
    imports = {
        path["a"]: ("p.b",),  # a -> b -> c
        path["b"]: ("p.c", "os"),
        path["c"]: (),
        path["d"]: ("p.e",),  # a cycle: d <-> e
        path["e"]: ("p.d",),
        path["f"]: ("p.c",),  # imported by none, largest: after the imported ones
    }
    order = dependencies_first(list(path.values()), imports, lambda p: sizes[Path(p).stem])
    names = [Path(p).stem for p in order]
    assert sorted(names) == sorted(sizes)
    assert names.index("c") < names.index("b") < names.index("a")
    assert names.index("c") < names.index("f")
    assert names[-2:] == ["f", "a"]  # what no file imports: last, largest first
    assert set(names[:4]) == {"b", "c", "d", "e"}


def test_survey_tells_which_files_need_a_check(tmp_path: Path) -> None:
    (tmp_path / "db.py").write_text("import sqlite3\nfrom util import f\n\ndef g():\n    return sqlite3.connect('x')\n")
    (tmp_path / "util.py").write_text("import os\n\ndef f():\n    return os.getcwd()\n")
    (tmp_path / "script").write_text("print(1)\n")  # named on the command line: checked whatever it is
    survey = runner.Survey(None)
    assert survey(str(tmp_path / "db.py")) == (True, ("sqlite3", "util", "util.f"))
    assert survey(str(tmp_path / "util.py")) == (False, ())
    assert survey(str(tmp_path / "script")) == (True, ())
    assert survey(str(tmp_path / "missing.py")) == (True, ())  # its check says why it cannot be read


def test_a_module_checked_before_its_importers_is_not_summarised_for_them(tmp_path, monkeypatch):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    # in the order given, or largest first, user.py would be checked first, and models.py summarised for it
    (tmp_path / "pkg" / "user.py").write_text(
        "import sqlite3\nfrom pkg.models import open_db\n\n\ndef use():\n    conn = open_db()\n"
        "    conn.execute('select 1')\n\n\ndef other():\n    return sqlite3.connect('y')\n" + "# padding\n" * 50
    )
    (tmp_path / "pkg" / "models.py").write_text("import sqlite3\n\n\ndef open_db():\n    return sqlite3.connect('x')\n")
    computed = _spy_on_summaries(monkeypatch)
    monkeypatch.chdir(tmp_path)
    paths = ["pkg/user.py", "pkg/__init__.py", "pkg/models.py"]
    results = check_project(paths, Options(), 1, None)
    found = {(r.path.replace(os.sep, "/"), f.line, f.code) for r in results for f in r.findings}
    assert found == {("pkg/user.py", 6, "CNL001")}
    assert "pkg.models" not in computed, computed
    assert [r.path for r in results] == paths  # reported in the order given


def test_a_later_round_reads_a_module_only_if_it_can_reach_a_new_name(tmp_path, monkeypatch):
    """A module that names no driver is summarised in a later round if it spells a factory found in an
    earlier one and imports that factory's package (or shares its root): spelling the name is not
    enough ("connect_db = None" in a module of another package)."""
    files = {
        "lib/pkg/__init__.py": "",
        "lib/pkg/db.py": "import sqlite3\n\n\ndef connect_db(path):\n    return sqlite3.connect(path)\n",
        "app/other/__init__.py": "",
        "app/other/spells.py": "connect_db = None\n\n\ndef get_conn():\n    return connect_db('x')\n",
        "app/other/wraps.py": "from pkg.db import connect_db\n\n\ndef get_conn():\n    return connect_db('x')\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    roots = {str(tmp_path / "lib"), str(tmp_path / "app")}
    declare_roots(roots)
    from connlint.project import ProjectIndex

    exports = frozenset({f"{tmp_path / 'lib'}|pkg.db.connect_db"})
    index = ProjectIndex(default_catalog(), Options(project_exports=exports), roots=roots)
    wraps = index.summary("other.wraps")
    assert wraps is not None and "get_conn" in wraps.factories
    assert index.summary("other.spells") is None  # not read: it cannot reach pkg.db.connect_db
    # a bare name (no root, no module) is reachable from anywhere
    index = ProjectIndex(default_catalog(), Options(project_exports=frozenset({"connect_db"})), roots=roots)
    assert index.summary("other.spells") is not None


def test_a_releasing_helper_method_reaches_only_files_that_spell_its_class(tmp_path: Path) -> None:
    """A releasing helper method acts only as Cls.method(conn) (or mod.Cls.method(conn)): a later round
    need not check a file that spells the method's name but not its class; a factory method may be
    called on a receiver astroid infers (get_db().session()), so its name is enough."""
    from connlint.project import HELPER_EXPORT, _FreshNames

    root = str(tmp_path)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    texts = {
        "name_only.py": "from pkg import tx\n\n\ndef f(t):\n    t.rollback()\n",
        "with_class.py": "from pkg.tx import Transaction\n\n\ndef f(conn):\n    Transaction.rollback(conn)\n",
        "factory.py": "from pkg import db\n\n\ndef f():\n    return db.get_db().session()\n",
    }
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    helper = _FreshNames({f"{root}|pkg.tx.Transaction.rollback{HELPER_EXPORT}"})
    assert not helper(str(tmp_path / "name_only.py"))
    assert helper(str(tmp_path / "with_class.py"))
    factory = _FreshNames({f"{root}|pkg.db.Database.session"})
    assert factory(str(tmp_path / "factory.py"))
