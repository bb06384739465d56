"""The pre-commit hooks, through the real ``pre-commit`` tool, on a temporary git repository.

The hook repository is a snapshot of this working tree (committed in a temporary repo), so the test
exercises the code under test, not the last commit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LEAKY = textwrap.dedent(
    """\
    import sqlite3


    def count(path):
        conn = sqlite3.connect(path)
        n = conn.execute("select count(*) from t").fetchone()[0]
        conn.close()
        return n
    """
)
CLEAN = (
    "import sqlite3\nfrom contextlib import closing\n\n\ndef f(p):\n    with closing(sqlite3.connect(p)) as c:\n"
    "        return c.execute('select 1').fetchone()\n"
)


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    repo = tmp_path_factory.mktemp("hookrepo")
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy2(ROOT / name, repo / name)
    shutil.copytree(ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    git("init", "-q", cwd=repo)
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "snapshot", cwd=repo)
    return repo, git("rev-parse", "HEAD", cwd=repo).strip()


@pytest.fixture()
def project(tmp_path: Path, hook_repo: tuple[Path, str]) -> Path:
    repo, rev = hook_repo
    project = tmp_path / "project"
    project.mkdir()
    git("init", "-q", cwd=project)
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {repo}\n  rev: {rev}\n  hooks:\n  - id: connlint\n  - id: connlint-fix\n"
    )
    (project / "pyproject.toml").write_text("[tool.connlint]\nexclude = ['generated']\n")
    (project / "leaky.py").write_text(LEAKY)
    (project / "clean.py").write_text(CLEAN)
    (project / "generated").mkdir()
    (project / "generated" / "models.py").write_text(LEAKY)
    git("add", ".", cwd=project)
    return project


def pre_commit(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = project.parent.parent / "pre-commit-home"  # shared by the tests of one session
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1"}
    env.pop("PYTHONPATH", None)  # the hook runs the snapshot installed in pre-commit's own virtualenv
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_check_hook_fails_on_a_leak_and_passes_clean_and_excluded_files(project: Path) -> None:
    proc = pre_commit(project, "connlint", "--files", "leaky.py")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "leaky.py:5:12: CNL101" in proc.stdout
    proc = pre_commit(project, "connlint", "--files", "clean.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # pre-commit passes the file explicitly; --force-exclude still honours the configured exclude
    proc = pre_commit(project, "connlint", "--files", "generated/models.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_fix_hook_rewrites_the_file(project: Path) -> None:
    proc = pre_commit(project, "connlint-fix", "--files", "leaky.py")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # pre-commit fails a hook that modified files
    fixed = (project / "leaky.py").read_text()
    assert "with contextlib.closing(sqlite3.connect(path)) as conn:" in fixed
    assert "conn.close()" not in fixed
    proc = pre_commit(project, "connlint", "--files", "leaky.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (project / "generated" / "models.py").read_text() == LEAKY
