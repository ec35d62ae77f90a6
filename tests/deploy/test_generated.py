"""Generated files are up to date with their sources (`make deploy-generate` rewrites them)."""

from __future__ import annotations

import pytest

from tests.deploy.support import REPO, load_docgen, run

DOCGEN = load_docgen()


@pytest.mark.parametrize("path", sorted(DOCGEN.GENERATORS, key=str), ids=lambda p: str(p.relative_to(REPO)))
def test_generated_file_is_current(path):
    expected = DOCGEN.GENERATORS[path]()
    assert path.exists(), f"{path.relative_to(REPO)} is missing: run `make deploy-generate`"
    assert path.read_text() == expected, f"{path.relative_to(REPO)} is stale: run `make deploy-generate`"


def test_crd_copy_is_byte_identical_to_crds():
    assert DOCGEN.CRD_COPY.read_bytes() == DOCGEN.CRD_SOURCE.read_bytes()


def test_check_mode_reports_staleness(tmp_path, monkeypatch):
    """`docgen.py --check` fails on a stale file and names it (what CI relies on)."""
    stale = tmp_path / "stale.md"
    stale.write_text("old\n")
    monkeypatch.setattr(DOCGEN, "GENERATORS", {stale: lambda: "new\n"})
    monkeypatch.setattr(DOCGEN, "REPO", tmp_path)
    assert DOCGEN.main(["--check"]) == 1
    assert stale.read_text() == "old\n"


def test_cli_check_passes_on_the_repository():
    result = run(str(REPO / ".venv" / "bin" / "python"), str(REPO / "hack" / "docgen.py"), "--check")
    assert result.returncode == 0, result.stdout + result.stderr
