"""The published test vectors of the signed form (docs/partners/signing-vectors.json).

They must verify with the hub's own verifier, with OpenSSL and with an implementation in
JavaScript written from the document alone, and the committed files must be exactly what
``python -m hub.security.vectors`` computes now (so the documentation cannot drift from the code).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from contracts import Envelope
from hub.security import vectors as signing_vectors
from hub.security.signing import BadSignature, PublicKey, SigningKey, canonical_form

ROOT = Path(__file__).resolve().parents[3]
VECTOR_FILE = ROOT / signing_vectors.JSON_PATH
DOCUMENT = ROOT / signing_vectors.MARKDOWN_PATH
JS_CHECK = Path(__file__).with_name("signing_vectors.mjs")
FILE: dict[str, Any] = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))
VECTORS = {vector["name"]: vector for vector in FILE["vectors"]}


def _headers(vector: dict[str, Any]) -> list[tuple[str, bytes]]:
    return [(name, value.encode()) for name, value in vector["headers"]]


def _value(vector: dict[str, Any]) -> bytes:
    return str(vector["value"]).encode()


def _form(vector: dict[str, Any]) -> bytes:
    return base64.b64decode(vector["signed_form_base64"])


def _public_key() -> PublicKey:
    return PublicKey.from_base64(FILE["key"]["key_id"], FILE["key"]["public_key_base64"])


def test_the_committed_vectors_and_document_are_what_the_code_computes() -> None:
    assert signing_vectors.main(["--root", str(ROOT), "--check"]) == 0
    assert signing_vectors.build() == FILE
    document = DOCUMENT.read_text(encoding="utf-8")
    assert signing_vectors.markdown(FILE) in document
    for vector in FILE["vectors"]:
        assert vector["signature"] in document
        assert vector["signed_form_base64"] in document


def test_the_vector_key_is_rfc_8032_test_1_in_every_form() -> None:
    key = FILE["key"]
    assert key["public_key_hex"] == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    from_pem = load_pem_private_key(key["private_key_pem"].encode(), password=None)
    assert isinstance(from_pem, Ed25519PrivateKey)
    assert from_pem.private_bytes_raw().hex() == key["seed_hex"]
    assert base64.b64decode(key["public_key_base64"]).hex() == key["public_key_hex"]


@pytest.mark.parametrize("name", list(VECTORS))
def test_a_vector_verifies_with_the_hubs_verifier(name: str) -> None:
    vector = VECTORS[name]
    assert canonical_form(_headers(vector), _value(vector)) == _form(vector)
    assert _form(vector).decode() == vector["signed_form"]
    _public_key().verify(_headers(vector), _value(vector))
    Envelope.from_headers(_headers(vector))  # and it is a well-formed CloudEvent


@pytest.mark.parametrize("name", list(VECTORS))
def test_the_hubs_signer_gives_the_vectors_signature(name: str) -> None:
    vector = VECTORS[name]
    seed = bytes.fromhex(FILE["key"]["seed_hex"])
    key = SigningKey(FILE["key"]["key_id"], Ed25519PrivateKey.from_private_bytes(seed))
    unsigned = [(n, v) for n, v in _headers(vector) if n not in ("ce_signature", "ce_sigkeyid")]
    signed = dict(key.sign_headers(unsigned, _value(vector)))
    assert signed["ce_signature"].decode() == vector["signature"]


@pytest.mark.parametrize("name", list(VECTORS))
def test_a_vector_changed_in_one_byte_anywhere_is_refused(name: str) -> None:
    vector = VECTORS[name]
    headers, value = _headers(vector), _value(vector)
    with pytest.raises(BadSignature):
        _public_key().verify(headers, value + b" ")
    for index, (header, text) in enumerate(headers):
        if header in ("ce_signature", "traceparent"):
            continue
        changed = [*headers[:index], (header, text + b"x"), *headers[index + 1 :]]
        with pytest.raises(BadSignature):
            _public_key().verify(changed, value)


def test_the_vectors_show_what_partners_get_wrong() -> None:
    """A JavaScript time and a record without the attributes the hub would default."""
    javascript = dict(VECTORS["javascript-client"]["headers"])
    assert javascript["ce_time"] == "2026-12-03T07:23:44.123Z"
    bare = dict(VECTORS["optional-attributes-absent"]["headers"])
    assert not {"ce_action", "ce_testdelivery", "ce_dataschema", "content-type"} & set(bare)
    assert bare["ce_time"].endswith("+01:00")


def _openssl_verify(folder: Path, form: bytes, signature: bytes) -> subprocess.CompletedProcess[str]:
    (folder / "public.pem").write_text(FILE["key"]["public_key_pem"])
    (folder / "form.bin").write_bytes(form)
    (folder / "signature.bin").write_bytes(signature)
    return subprocess.run(
        [
            *("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(folder / "public.pem")),
            *("-rawin", "-in", str(folder / "form.bin"), "-sigfile", str(folder / "signature.bin")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("name", list(VECTORS))
def test_openssl_verifies_a_vector_and_refuses_it_tampered(name: str, tmp_path: Path) -> None:
    vector = VECTORS[name]
    signature = base64.b64decode(vector["signature"])
    genuine = _openssl_verify(tmp_path, _form(vector), signature)
    assert genuine.returncode == 0, genuine.stderr
    assert "Signature Verified Successfully" in genuine.stdout
    form = _form(vector)
    tampered = form[:-2] + (b"1" if form[-2:-1] == b"0" else b"0") + b"\n"  # the value's hash, changed
    refused = _openssl_verify(tmp_path, tampered, signature)
    assert refused.returncode != 0
    assert "Signature Verification Failure" in refused.stdout + refused.stderr


def test_openssl_signs_a_vectors_form_exactly_as_the_hub_does(tmp_path: Path) -> None:
    vector = VECTORS["javascript-client"]
    (tmp_path / "private.pem").write_text(FILE["key"]["private_key_pem"])
    (tmp_path / "form.bin").write_bytes(_form(vector))
    signed = subprocess.run(
        [
            *("openssl", "pkeyutl", "-sign", "-inkey", str(tmp_path / "private.pem")),
            *("-rawin", "-in", str(tmp_path / "form.bin")),
        ],
        capture_output=True,
        check=True,
    )
    assert base64.b64encode(signed.stdout).decode() == vector["signature"]


def test_a_javascript_implementation_of_the_document_agrees_with_every_vector() -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is part of the development machine (ENVIRONMENT.md)"
    result = subprocess.run(
        [node, str(JS_CHECK), str(VECTOR_FILE)], capture_output=True, text=True, check=True
    )
    checked = {line["name"]: line for line in map(json.loads, result.stdout.splitlines())}
    assert set(checked) == set(VECTORS)
    for name, outcome in checked.items():
        assert outcome["public_key_derived"], name
        assert outcome["form_matches"], name
        assert outcome["verifies"], name
        assert not outcome["tampered_verifies"], name
        assert outcome["signed_again"] == VECTORS[name]["signature"], name
