"""Operator keys: the CLI's signing key, the trusted set the services load, and the check."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest

from contracts import Envelope
from contracts.admin import ChangePartnerStatus
from hub.cli.main import main
from hub.errors import ConfigurationError
from hub.runtime.settings import HubSettings
from hub.security.key_files import create_private_key, public_pem
from hub.security.operator_keys import (
    ADMIN_CLI_SOURCE,
    CommandPolicy,
    load_public_keys,
    operator_key_id,
    operator_key_path,
    operator_signing_key,
    trusted_operator_keys,
)
from hub.security.signing import BadSignature, SigningKey, StaleEvent, UnknownSigningKey, UnsignedEvent
from services.identity.domain import ADMIN_CLI_SOURCE as IDENTITY_ADMIN_CLI_SOURCE

COMMAND = ChangePartnerStatus(partner_id="CH/CAN/LU/steuerverwaltung", status="suspended", reason="audit")
VALUE = COMMAND.model_dump_json().encode()


def _operator(path: Path) -> SigningKey:
    """A new operator key pair at ``path`` (and ``path.pub``), as ``openssl genpkey`` would make it."""
    private_key = create_private_key(path)
    return SigningKey(operator_key_id(private_key.public_key()), private_key)


def _command(time: dt.datetime | None = None) -> Envelope:
    return Envelope.new(COMMAND, source=ADMIN_CLI_SOURCE, business_process_id="partner:x", time=time)


def _signed(key: SigningKey, command: Envelope) -> list[tuple[str, bytes]]:
    """The command's record headers as the CLI sends them, signed with ``key``."""
    return key.sign_headers(command.to_headers(), VALUE)


def test_the_cli_source_is_the_one_identity_names() -> None:
    assert ADMIN_CLI_SOURCE == IDENTITY_ADMIN_CLI_SOURCE


def test_the_local_operator_key_is_created_once_and_is_all_a_local_hub_trusts(tmp_path: Path) -> None:
    settings = HubSettings(state_dir=tmp_path)
    key = operator_signing_key(settings)
    path = tmp_path / "secrets" / "operator.key"
    assert operator_key_path(settings) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key.key_id.startswith("operator-")
    assert len(key.key_id) == len("operator-") + 16
    assert operator_signing_key(settings).public.base64 == key.public.base64  # the same file, not a new key
    assert {k: v.base64 for k, v in trusted_operator_keys(settings).items()} == {
        key.key_id: key.public.base64
    }


def test_the_key_id_is_derived_from_the_key(tmp_path: Path) -> None:
    alice, bob = _operator(tmp_path / "alice.key"), _operator(tmp_path / "bob.key")
    assert alice.key_id != bob.key_id
    configured = HubSettings(state_dir=tmp_path, operator_key_file=tmp_path / "alice.key")
    assert operator_signing_key(configured).key_id == alice.key_id


def test_a_configured_operator_key_file_must_exist(tmp_path: Path) -> None:
    settings = HubSettings(state_dir=tmp_path, operator_key_file=tmp_path / "typo.key")
    with pytest.raises(ConfigurationError, match=r"HUB_OPERATOR_KEY_FILE \S+/typo\.key does not exist"):
        operator_signing_key(settings)
    assert not (tmp_path / "typo.key").exists()  # nothing created in its place


def test_a_trusted_directory_holds_one_file_per_operator_pem_or_base64(tmp_path: Path) -> None:
    alice, bob = _operator(tmp_path / "keys" / "alice.key"), _operator(tmp_path / "keys" / "bob.key")
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / "alice.pub").write_text(public_pem(alice.public.key))
    (trusted / "bob.pem").write_text(f"# Bob, operations, since 2026-11\n{bob.public.base64}\n")
    (trusted / "README.txt").write_text("not a key, and not read")
    keys = load_public_keys(trusted)
    assert {k: v.base64 for k, v in keys.items()} == {
        alice.key_id: alice.public.base64,
        bob.key_id: bob.public.base64,
    }


def test_a_trusted_file_may_hold_several_keys(tmp_path: Path) -> None:
    alice, bob, carol = (_operator(tmp_path / f"{name}.key") for name in ("alice", "bob", "carol"))
    bundle = tmp_path / "operators.pub"
    bundle.write_text(
        public_pem(alice.public.key) + f"{bob.public.base64}  # Bob\n\n" + public_pem(carol.public.key)
    )
    assert set(load_public_keys(bundle)) == {alice.key_id, bob.key_id, carol.key_id}


def test_a_configured_trusted_set_replaces_the_local_key(tmp_path: Path) -> None:
    alice = _operator(tmp_path / "alice.key")
    settings = HubSettings(state_dir=tmp_path, operator_public_keys=tmp_path / "alice.key.pub")
    assert set(trusted_operator_keys(settings)) == {alice.key_id}
    assert not operator_key_path(settings).exists()  # no local key is made where keys are configured


def test_a_missing_or_broken_trusted_set_stops_the_service(tmp_path: Path) -> None:
    missing = HubSettings(state_dir=tmp_path, operator_public_keys=tmp_path / "nowhere")
    with pytest.raises(ConfigurationError, match=r"HUB_OPERATOR_PUBLIC_KEYS \S+/nowhere does not exist"):
        CommandPolicy.from_settings(missing)
    broken = tmp_path / "operators.pub"
    broken.write_text("# Alice\nAAAA\n")
    with pytest.raises(
        ConfigurationError, match=r"operators\.pub line 2: an Ed25519 public key has 32 bytes, not 3"
    ):
        CommandPolicy.from_settings(HubSettings(state_dir=tmp_path, operator_public_keys=broken))


def test_removing_an_operators_file_revokes_the_key_with_the_next_command(tmp_path: Path) -> None:
    alice = _operator(tmp_path / "alice.key")
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / "alice.pub").write_text(public_pem(alice.public.key))
    policy = CommandPolicy.from_settings(HubSettings(state_dir=tmp_path, operator_public_keys=trusted))
    policy.verify_operator_command(_signed(alice, _command()), VALUE)
    (trusted / "alice.pub").unlink()
    with pytest.raises(UnknownSigningKey, match="not a trusted operator key"):
        policy.verify_operator_command(_signed(alice, _command()), VALUE)


def test_the_check_refuses_unsigned_untrusted_tampered_and_stale_commands(tmp_path: Path) -> None:
    settings = HubSettings(state_dir=tmp_path)
    policy = CommandPolicy.from_settings(settings)
    operator = operator_signing_key(settings)
    policy.verify_operator_command(_signed(operator, _command()), VALUE)
    with pytest.raises(UnsignedEvent, match="is not signed by an operator"):
        policy.verify_operator_command(_command().to_headers(), VALUE)
    stranger = _operator(tmp_path / "stranger.key")
    with pytest.raises(UnknownSigningKey, match=f"signed with {stranger.key_id}, not a trusted operator key"):
        policy.verify_operator_command(_signed(stranger, _command()), VALUE)
    impostor = SigningKey.generate(operator.key_id)  # the trusted id, another key
    with pytest.raises(BadSignature):
        policy.verify_operator_command(_signed(impostor, _command()), VALUE)
    tampered = VALUE.replace(b"suspended", b"active")
    with pytest.raises(BadSignature, match="forged, or changed after signing"):
        policy.verify_operator_command(_signed(operator, _command()), tampered)
    old = _command(time=dt.datetime.now(dt.UTC) - dt.timedelta(hours=7))
    with pytest.raises(StaleEvent):
        policy.verify_operator_command(_signed(operator, old), VALUE)


def test_with_signatures_optional_an_unsigned_command_passes_but_a_bad_one_does_not(tmp_path: Path) -> None:
    settings = HubSettings(state_dir=tmp_path, require_signatures=False)
    policy = CommandPolicy.from_settings(settings)
    policy.verify_operator_command(_command().to_headers(), VALUE)
    stranger = _operator(tmp_path / "stranger.key")
    with pytest.raises(UnknownSigningKey):
        policy.verify_operator_command(_signed(stranger, _command()), VALUE)
    with pytest.raises(StaleEvent):  # the replay window still holds
        policy.verify_operator_command(
            _command(time=dt.datetime.now(dt.UTC) - dt.timedelta(hours=7)).to_headers(), VALUE
        )


def test_hub_keys_operator_prints_the_key_id_and_the_public_key_for_the_trusted_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    alice = _operator(tmp_path / "alice.key")
    monkeypatch.setenv("HUB_OPERATOR_KEY_FILE", str(tmp_path / "alice.key"))
    assert main(["keys", "operator", "--json", "--out", str(tmp_path / "alice.pub")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["key_id"], shown["public_key"]) == (alice.key_id, alice.public.base64)
    assert "PRIVATE" not in json.dumps(shown)
    assert set(load_public_keys(tmp_path / "alice.pub")) == {alice.key_id}
