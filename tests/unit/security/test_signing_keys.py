"""Key files, the hub's delivery key, the relay's signing and a partner's check of deliveries."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest

from contracts import KRIENS, DepartureConfirmed, Envelope
from contracts.catalog import serialize_data
from contracts.channels import PARTNER_SOURCE_PREFIX
from hub.local.partner_client import sign_record, verify_delivery
from hub.runtime.outbox import sign_headers
from hub.runtime.settings import HubSettings
from hub.security.key_files import (
    create_private_key,
    hub_signing_key,
    load_private_key,
    load_public_key,
    public_pem,
)
from hub.security.keyring import Keyring
from hub.security.signing import BadSignature, PublicKey, SigningKey, UnknownSigningKey, UnsignedEvent

DATA = DepartureConfirmed(municipality=KRIENS, confirmed_on=dt.date(2026, 3, 1))
VALUE = serialize_data(DATA)


def _envelope() -> Envelope:
    return Envelope.new(DATA, source="urn:ch:lu:hub:service:registry", business_process_id="eumzug-1")


def test_a_new_key_file_is_private_pem_with_its_public_key_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "partner.key"
    key = create_private_key(path)
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    public = load_public_key(path.with_name("partner.key.pub"))
    assert public_pem(public) == public_pem(key.public_key())
    assert public_pem(load_private_key(path).public_key()) == public_pem(key.public_key())


def test_creating_an_existing_key_returns_the_existing_one(tmp_path: Path) -> None:
    """Two processes racing to create the hub's key must end up signing with the same key."""
    path = tmp_path / "hub.key"
    first = create_private_key(path)
    second = create_private_key(path)
    assert public_pem(second.public_key()) == public_pem(first.public_key())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".key-")] == []


def test_a_public_key_file_may_be_pem_or_one_line_of_base64(tmp_path: Path) -> None:
    key = SigningKey.generate("k")
    (tmp_path / "a.pem").write_text(public_pem(key.public.key))
    (tmp_path / "b.txt").write_text(key.public.base64 + "\n")
    assert PublicKey("k", load_public_key(tmp_path / "a.pem")).base64 == key.public.base64
    assert PublicKey("k", load_public_key(tmp_path / "b.txt")).base64 == key.public.base64
    (tmp_path / "c.txt").write_text("not a key")
    with pytest.raises(ValueError, match="not base64"):
        load_public_key(tmp_path / "c.txt")


def test_the_hub_key_is_created_under_the_state_dir_and_stable(tmp_path: Path) -> None:
    settings = HubSettings(state_dir=tmp_path)
    key = hub_signing_key(settings)
    assert key.key_id.startswith("hub-")
    assert (tmp_path / "secrets" / "hub-signing.key").exists()
    assert hub_signing_key(settings).key_id == key.key_id


def test_a_configured_hub_key_file_must_exist(tmp_path: Path) -> None:
    settings = HubSettings(state_dir=tmp_path, signing_key_file=tmp_path / "missing.key")
    with pytest.raises(FileNotFoundError, match="HUB_SIGNING_KEY_FILE"):
        hub_signing_key(settings)


def test_the_relay_signs_what_it_publishes_and_leaves_dead_letters_alone() -> None:
    hub = SigningKey.generate("hub-1")
    envelope = _envelope()
    headers = {name: value.decode() for name, value in envelope.to_headers()} | {"traceparent": "00-x"}
    signed = sign_headers(hub, headers, VALUE)
    assert signed["ce_sigkeyid"] == "hub-1"
    assert {name: signed[name] for name in headers} == headers  # nothing re-encoded
    on_the_wire = [(n, v.encode()) for n, v in signed.items()]
    hub.public.verify(on_the_wire, VALUE)
    hub.public.verify([*on_the_wire, ("tracestate", b"vendor=1")], VALUE)  # trace context is not signed
    with pytest.raises(BadSignature):
        hub.public.verify([(n, b"hub-2" if n == "ce_sigkeyid" else v) for n, v in on_the_wire], VALUE)
    dead_letter = headers | {"dlt-original-topic": "hub.ingress"}
    assert sign_headers(hub, dead_letter, VALUE) == dead_letter


def test_a_row_that_is_no_cloudevent_is_published_unsigned_rather_than_stopping_the_relay() -> None:
    headers = {"ce_id": "x"}
    assert sign_headers(SigningKey.generate("hub-1"), headers, VALUE) == headers


def test_a_partner_accepts_only_deliveries_signed_by_a_hub_key_it_trusts() -> None:
    hub, stranger = SigningKey.generate("hub-1"), SigningKey.generate("hub-2")
    trusted = {"hub-1": hub.public}
    headers = _envelope().to_headers()
    verify_delivery(hub.sign_headers(headers, VALUE), VALUE, trusted)
    with pytest.raises(UnsignedEvent, match="not signed by the hub"):
        verify_delivery(headers, VALUE, trusted)
    with pytest.raises(UnknownSigningKey, match="not a hub key"):
        verify_delivery(stranger.sign_headers(headers, VALUE), VALUE, trusted)
    tampered = json.dumps(json.loads(VALUE) | {"confirmed_on": "2026-03-02"}).encode()
    with pytest.raises(BadSignature):
        verify_delivery(hub.sign_headers(headers, VALUE), tampered, trusted)


def test_the_keyring_view_of_hub_keys_follows_later_additions() -> None:
    keyring = Keyring()
    view = keyring.hub_keys
    assert not view
    hub = SigningKey.generate("hub-1")
    keyring.trust_hub_key(hub.public)
    assert view["hub-1"].base64 == hub.public.base64
    keyring.set_signing_key("CH/CAN/LU/eportal", hub)
    assert keyring.signing_key("CH/CAN/LU/eportal") is hub
    assert keyring.signing_key("CH/CAN/LU/other") is None


def test_a_hand_built_record_is_signed_for_the_partner_its_source_names() -> None:
    partner = "CH/CAN/LU/unit-signer"
    key = SigningKey.generate("unit-signer-1")
    keyring = Keyring()
    keyring.set_signing_key(partner, key)
    envelope = Envelope.new(DATA, source=PARTNER_SOURCE_PREFIX + partner, business_process_id="eumzug-1")
    signed = sign_record(keyring, envelope.to_headers(), VALUE)
    key.public.verify(signed, VALUE)
    assert sign_record(keyring, signed, VALUE) == signed  # signing again replaces, never repeats, the headers
    stranger = Envelope.new(DATA, source=PARTNER_SOURCE_PREFIX + "CH/CAN/LU/nobody", business_process_id="x")
    assert sign_record(keyring, stranger.to_headers(), VALUE) == stranger.to_headers()  # no key: as it was
    poison = [("ce_id", b"x")]  # no CloudEvent: left for the hub to dead-letter as it is
    assert sign_record(keyring, poison, VALUE) == poison
