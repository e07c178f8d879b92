"""Client tools for a restore read what the dump's pg_dump wrote: a newer minor release is
preferred when one fits, and an older psql's refusal of `\\restrict` says what to install."""

from pathlib import Path

import pytest

from sage_ops import pgtools
from sage_ops.backups.restore import _older_client_hint


def _fake_bin(root: Path, version: str) -> Path:
    """A bin directory whose pg_dump answers --version like PostgreSQL's does."""
    bin_dir = root / version / "bin"
    bin_dir.mkdir(parents=True)
    tool = bin_dir / "pg_dump"
    tool.write_text(f"#!/bin/sh\necho 'pg_dump (PostgreSQL) {version}'\n")
    tool.chmod(0o755)
    return bin_dir


@pytest.fixture
def two_16s(tmp_path, monkeypatch):
    old, new = _fake_bin(tmp_path, "16.2"), _fake_bin(tmp_path, "16.10")
    monkeypatch.setattr(pgtools, "candidate_bin_dirs", lambda: [old, new])
    return old, new


def test_a_dump_by_a_newer_minor_prefers_the_newer_client(two_16s):
    old, new = two_16s
    assert pgtools.tools_for_server(16, "16.4").bin_dir == old  # no dump to read: first found
    assert pgtools.tools_for_server(16, "16.4", "16.10").bin_dir == new
    assert pgtools.tools_for_server(16, "16.4", "16.2").bin_dir == old


def test_a_newer_major_is_taken_only_when_the_fitting_major_is_older_than_the_dump(
    tmp_path, monkeypatch
):
    older_16, newer_17 = _fake_bin(tmp_path, "16.2"), _fake_bin(tmp_path, "17.6")
    monkeypatch.setattr(pgtools, "candidate_bin_dirs", lambda: [older_16, newer_17])
    assert pgtools.tools_for_server(16, "16.4", "16.1").bin_dir == older_16
    assert pgtools.tools_for_server(16, "16.4", "16.10").bin_dir == newer_17


def test_a_dump_of_an_older_major_is_read_by_its_own_major_also_below_the_server(
    tmp_path, monkeypatch
):
    """The embedded scratch (16.2) verifying a backup of a PostgreSQL 15 database: 16.2 predates
    15.20's `\\restrict`, the 15.20 psql reads it and loads into 16."""
    newer_16, own_15 = _fake_bin(tmp_path, "16.2"), _fake_bin(tmp_path, "15.20")
    monkeypatch.setattr(pgtools, "candidate_bin_dirs", lambda: [newer_16, own_15])
    assert pgtools.tools_for_server(16, "16.2", "15.20").bin_dir == own_15
    assert pgtools.tools_for_server(16, "16.2", "15.2").bin_dir == own_15
    assert pgtools.tools_for_server(16, "16.2").bin_dir == newer_16  # pg_dump: the server's major
    older_15 = _fake_bin(tmp_path / "old", "15.10")
    monkeypatch.setattr(pgtools, "candidate_bin_dirs", lambda: [older_15, newer_16])
    assert pgtools.tools_for_server(16, "16.2", "15.20").bin_dir == newer_16  # none reads it surely


def test_an_older_psql_rejecting_restrict_names_what_to_install():
    stderr = "psql:<stdin>:2: error: invalid command \\restrict\n"
    hint = _older_client_hint(stderr, "16.2", "15.20")
    assert "written by pg_dump 15.20 and psql 16.2 is older" in hint
    assert pgtools.BIN_DIR_ENV in hint
    assert _older_client_hint("ERROR: relation exists", "16.2", "15.20") == ""
