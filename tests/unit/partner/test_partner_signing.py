"""The partner distribution's signing (hub_partner.signing) against the published test vectors.

hub_partner is a second implementation of docs/partners/signing.md, apart from the hub's: the
vectors pin both to the same bytes, so a partner's signature verifies at the hub and back.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hub_partner import (
    AmbiguousHeaders,
    BadSignature,
    PublicKey,
    SigningKey,
    UnknownSigningKey,
    UnsignedEvent,
    signed_form,
    verify_delivery,
)

from hub.security.signing import PublicKey as HubPublicKey
from hub.security.signing import SigningKey as HubSigningKey

ROOT = Path(__file__).resolve().parents[3]
FILE: dict[str, Any] = json.loads((ROOT / "docs/partners/signing-vectors.json").read_text(encoding="utf-8"))
VECTORS = {vector["name"]: vector for vector in FILE["vectors"]}
KEY_ID = FILE["key"]["key_id"]
SEED = bytes.fromhex(FILE["key"]["seed_hex"])


def _headers(vector: dict[str, Any]) -> list[tuple[str, bytes]]:
    return [(name, value.encode()) for name, value in vector["headers"]]


def _value(vector: dict[str, Any]) -> bytes:
    return str(vector["value"]).encode()


def _unsigned(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    return [(name, value) for name, value in headers if name not in ("ce_sigkeyid", "ce_signature")]


def test_the_vectors_key_derives_its_published_public_key() -> None:
    key = SigningKey.from_seed(KEY_ID, SEED)
    assert key.public.base64 == FILE["key"]["public_key_base64"]
    assert (
        SigningKey.from_pem(KEY_ID, FILE["key"]["private_key_pem"].encode()).public.base64
        == key.public.base64
    )
    assert PublicKey.from_pem(KEY_ID, FILE["key"]["public_key_pem"].encode()).base64 == key.public.base64


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_the_signed_form_is_the_vectors_byte_for_byte(name: str) -> None:
    vector = VECTORS[name]
    form = signed_form(_headers(vector), _value(vector))
    assert form == vector["signed_form"].encode()
    assert form == base64.b64decode(vector["signed_form_base64"])


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_signing_the_vectors_headers_gives_the_vectors_signature(name: str) -> None:
    vector = VECTORS[name]
    key = SigningKey.from_seed(KEY_ID, SEED)
    signed = key.sign_headers(_unsigned(_headers(vector)), _value(vector))
    assert dict(signed)["ce_signature"].decode() == vector["signature"]
    key.public.verify(_headers(vector), _value(vector))  # the vector as sent verifies too


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_the_hub_verifies_what_the_partner_signs_and_the_reverse(name: str) -> None:
    vector = VECTORS[name]
    private = Ed25519PrivateKey.generate()
    partner_signed = SigningKey("partner-2026a", private).sign_headers(
        _unsigned(_headers(vector)), _value(vector)
    )
    HubPublicKey("partner-2026a", private.public_key()).verify(partner_signed, _value(vector))
    hub_signed = HubSigningKey("hub-0123456789abcdef", private).sign_headers(
        _unsigned(_headers(vector)), _value(vector)
    )
    verify_delivery(
        hub_signed,
        _value(vector),
        {"hub-0123456789abcdef": PublicKey("hub-0123456789abcdef", private.public_key())},
    )


def test_trace_headers_added_after_signing_leave_the_signature_valid() -> None:
    vector = VECTORS["javascript-client"]
    key = SigningKey.from_seed(KEY_ID, SEED)
    signed = key.sign_headers(_unsigned(_headers(vector)), _value(vector))
    traced = [
        *signed,
        ("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("tracestate", b"lu=1"),
    ]
    key.public.verify(traced, _value(vector))


def test_a_changed_signed_header_or_value_breaks_the_signature() -> None:
    vector = VECTORS["javascript-client"]
    key = SigningKey.from_seed(KEY_ID, SEED).public
    changed = [(n, b"eumzug-2026-999999" if n == "ce_businessprocessid" else v) for n, v in _headers(vector)]
    with pytest.raises(BadSignature):
        key.verify(changed, _value(vector))
    with pytest.raises(BadSignature):
        key.verify(_headers(vector), _value(vector) + b" ")


@pytest.mark.parametrize(
    "extra",
    [("ce_partnerref", b"a"), ("ce_my_ext", b"x"), ("ce_id", b"again")],
    ids=["repeated-extension", "invalid-name", "repeated-id"],
)
def test_headers_a_signature_cannot_pin_down_are_refused(extra: tuple[str, bytes]) -> None:
    headers = [("ce_id", b"1"), ("ce_partnerref", b"b"), extra]
    with pytest.raises(AmbiguousHeaders):
        signed_form(headers, b"")
    if extra[0] == "ce_partnerref":  # one of them alone is fine
        assert b"ce_partnerref:1:b\n" in signed_form(headers[:2], b"")


def test_a_null_signed_header_is_refused_and_an_empty_one_signed() -> None:
    with pytest.raises(AmbiguousHeaders):
        signed_form([("ce_subject", None)], b"")  # type: ignore[list-item]
    assert b"ce_subject:0:\n" in signed_form([("ce_subject", b"")], b"")


def test_content_type_is_matched_in_any_case_and_other_headers_are_not_signed() -> None:
    form = signed_form([("Content-Type", b"application/json"), ("traceparent", b"x"), ("CE_ID", b"y")], b"")
    assert form.splitlines()[1:-1] == [b"content-type:16:application/json"]


def test_a_delivery_must_be_signed_by_a_trusted_hub_key() -> None:
    vector = VECTORS["javascript-client"]
    trusted = {KEY_ID: SigningKey.from_seed(KEY_ID, SEED).public}
    verify_delivery(_headers(vector), _value(vector), trusted)
    with pytest.raises(UnsignedEvent):
        verify_delivery(_unsigned(_headers(vector)), _value(vector), trusted)
    with pytest.raises(UnknownSigningKey):
        verify_delivery(_headers(vector), _value(vector), {"hub-other": trusted[KEY_ID]})
    forger = SigningKey(KEY_ID, Ed25519PrivateKey.generate())
    with pytest.raises(BadSignature):
        verify_delivery(
            forger.sign_headers(_unsigned(_headers(vector)), _value(vector)), _value(vector), trusted
        )
