"""The audit key file: created once for local set-ups, never by a verifier, never shown."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hub.audit.key import audit_key_path, load_audit_key
from hub.errors import ConfigurationError
from hub.runtime.settings import HubSettings


def test_the_registry_creates_a_private_key_once_and_reads_it_back(tmp_path: Path) -> None:
    settings = HubSettings(state_dir=tmp_path)
    first = load_audit_key(settings, create=True)
    path = audit_key_path(settings)
    assert path == tmp_path / "secrets" / "audit.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_audit_key(settings, create=True) == first
    assert load_audit_key(settings, create=False) == first
    assert path.read_text().strip() not in repr(first)


def test_verifying_never_creates_a_key(tmp_path: Path) -> None:
    settings = HubSettings(state_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="no audit key at"):
        load_audit_key(settings, create=False)
    assert not audit_key_path(settings).exists()


def test_a_configured_key_file_must_exist(tmp_path: Path) -> None:
    settings = HubSettings(state_dir=tmp_path, audit_key_file=tmp_path / "mounted" / "audit.key")
    with pytest.raises(ConfigurationError, match="HUB_AUDIT_KEY_FILE"):
        load_audit_key(settings, create=True)
    assert not (tmp_path / "mounted").exists()


@pytest.mark.parametrize(("content", "problem"), [("abcd", "shorter than 32 bytes"), ("zz" * 32, "not hex")])
def test_a_bad_key_file_is_refused_without_showing_it(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "audit.key"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=problem) as refused:
        load_audit_key(HubSettings(state_dir=tmp_path, audit_key_file=path), create=False)
    assert content not in str(refused.value)
