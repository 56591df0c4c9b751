"""Identity rules without I/O: key derivation, sector pseudonyms, matching, what a partner sees."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid

import pytest

from contracts import LocalPersonId
from services.identity.domain import (
    ADMIN_CLI_SOURCE,
    MIN_PSEUDONYM_SEED_BYTES,
    Candidates,
    MatchDecision,
    PseudonymBasis,
    decide_match,
    local_id_for,
    may_administer,
    new_pseudonym_seed,
    normalise_name,
    partner_of_source,
    pseudonym_message,
    same_name,
    sector_key,
    sector_pseudonym,
)
from tests.fixtures.pseudonyms import from_ahvn13_alone

SECRET = bytes(range(32))
VN = "7561234567897"
SEED = bytes(range(100, 132))
OTHER_SEED = bytes(range(200, 232))
PSEUDONYM = re.compile(r"^tax:[a-z2-7]{26}$")
A, B, C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def test_each_key_version_derives_its_own_key() -> None:
    keys = {sector_key(SECRET, "tax", version) for version in (1, 2, 3)}
    assert len(keys) == 3
    assert sector_key(SECRET, "tax", 2) == sector_key(SECRET, "tax", 2)


def test_key_derivation_depends_on_secret_sector_and_version() -> None:
    assert sector_key(SECRET, "tax", 2) != sector_key(bytes(32), "tax", 2)
    assert sector_key(SECRET, "tax", 2) != sector_key(SECRET, "building", 2)


def test_version_one_keeps_the_derivation_used_before_keys_had_versions() -> None:
    before = hmac.new(SECRET, b"hub-sector-key:tax", hashlib.sha256).digest()
    assert sector_key(SECRET, "tax", 1) == before == sector_key(SECRET, "tax")


def test_key_versions_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        sector_key(SECRET, "tax", 0)


def test_pseudonym_is_stable_within_a_sector_and_key_version() -> None:
    assert sector_pseudonym(SECRET, "tax", VN, 2, SEED) == sector_pseudonym(SECRET, "tax", VN, 2, SEED)


def test_pseudonyms_differ_across_sectors_and_key_versions() -> None:
    pseudonyms = {
        sector_pseudonym(SECRET, "tax", VN, 1, SEED),
        sector_pseudonym(SECRET, "tax", VN, 2, SEED),
        sector_pseudonym(SECRET, "resident-registration", VN, 1, SEED),
        sector_pseudonym(SECRET, "resident-registration", VN, 2, SEED),
    }
    assert len(pseudonyms) == 4


def test_pseudonym_names_its_sector_and_hides_the_ahvn13() -> None:
    pseudonym = sector_pseudonym(SECRET, "tax", VN, 3, SEED)
    sector, _, value = pseudonym.partition(":")
    assert sector == "tax"
    assert len(value) == 26
    assert VN not in pseudonym


def test_a_seeded_pseudonym_hashes_the_documented_encoding_of_ahvn13_and_seed() -> None:
    # Spelt out independently of the implementation: label, u16 length + AHVN13, u16 length + seed.
    message = b"hub-pseudonym:seeded:v1" + b"\x00\x0d" + VN.encode() + b"\x00\x20" + SEED
    assert pseudonym_message(VN, SEED) == message
    digest = hmac.new(sector_key(SECRET, "tax", 2), message, hashlib.sha256).digest()
    expected = "tax:" + base64.b32encode(digest).decode().lower()[:26]
    assert sector_pseudonym(SECRET, "tax", VN, 2, SEED) == expected


def test_a_seeded_pseudonym_keeps_the_format_and_hides_the_ahvn13() -> None:
    pseudonym = sector_pseudonym(SECRET, "tax", VN, 1, SEED)
    assert PSEUDONYM.match(pseudonym), pseudonym
    assert VN not in pseudonym


def test_the_same_ahvn13_and_seed_give_the_same_pseudonym() -> None:
    assert sector_pseudonym(SECRET, "tax", VN, 3, SEED) == sector_pseudonym(SECRET, "tax", VN, 3, bytes(SEED))


def test_another_seed_gives_another_pseudonym_in_every_sector_and_version() -> None:
    for sector in ("tax", "resident-registration", "citizen-services"):
        for version in (1, 2):
            seeded = sector_pseudonym(SECRET, sector, VN, version, SEED)
            assert seeded != sector_pseudonym(SECRET, sector, VN, version, OTHER_SEED)
            assert seeded != from_ahvn13_alone(SECRET, sector, VN, version)  # nor a recomputable one


def test_seeded_pseudonyms_differ_across_sectors_versions_and_persons() -> None:
    pseudonyms = {
        sector_pseudonym(SECRET, "tax", VN, 1, SEED),
        sector_pseudonym(SECRET, "tax", VN, 2, SEED),
        sector_pseudonym(SECRET, "resident-registration", VN, 1, SEED),
        sector_pseudonym(SECRET, "tax", "7569000000019", 1, SEED),
        sector_pseudonym(bytes(32), "tax", VN, 1, SEED),
    }
    assert len(pseudonyms) == 5


def test_the_encoding_cannot_be_split_two_ways() -> None:
    # A plain concatenation AHVN13 || seed would let a digit move from one to the other.
    moved = pseudonym_message(VN[:-1], VN[-1].encode() + SEED)
    assert VN.encode() + SEED == VN[:-1].encode() + VN[-1].encode() + SEED
    assert moved != pseudonym_message(VN, SEED)
    # And no seeded message is ever a legacy one: those are the 13 digits alone.
    assert not pseudonym_message(VN, SEED).isdigit()


def test_new_seeds_are_random_and_at_least_128_bits() -> None:
    seeds = {new_pseudonym_seed() for _ in range(100)}
    assert len(seeds) == 100
    assert min(len(seed) for seed in seeds) * 8 >= 128


def test_a_seed_shorter_than_128_bits_is_refused() -> None:
    assert MIN_PSEUDONYM_SEED_BYTES * 8 == 128
    with pytest.raises(ValueError, match="at least 16 bytes"):
        sector_pseudonym(SECRET, "tax", VN, 1, bytes(15))
    sector_pseudonym(SECRET, "tax", VN, 1, bytes(16))


def test_a_pseudonym_basis_derives_as_sector_pseudonym_and_never_shows_its_parts() -> None:
    seeded = PseudonymBasis(VN, SEED)
    assert seeded.pseudonym(SECRET, "tax", 2) == sector_pseudonym(SECRET, "tax", VN, 2, SEED)
    # A basis in a log line or traceback must not leak what it is made of.
    assert VN not in repr(seeded)
    assert repr(SEED) not in repr(seeded)


def test_an_exact_ahvn13_wins_over_every_other_lookup() -> None:
    decision = decide_match(Candidates(by_vn=A, by_local_id=B, same_name_and_birth=(C,)))
    assert decision == MatchDecision("exact-vn", A)


def test_a_known_local_id_comes_second() -> None:
    assert decide_match(Candidates(by_local_id=B, same_name_and_birth=(C,))) == MatchDecision("local-id", B)


def test_same_name_and_birth_alone_creates_a_new_person_flagged_for_review() -> None:
    decision = decide_match(Candidates(same_name_and_birth=(B, C)))
    assert decision.match == "flagged-for-review"
    assert decision.person_id is None  # never merged silently
    assert decision.review_candidates == (B, C)


def test_nothing_known_means_a_new_person() -> None:
    assert decide_match(Candidates()) == MatchDecision("new", None)


def test_names_compare_without_case_spacing_or_decomposed_accents() -> None:
    assert normalise_name("  Müller ") == normalise_name("MU\u0308LLER")
    assert same_name("Muster", "Anna  Maria", "MUSTER", "anna maria")
    assert not same_name("Muster", "Anna", "Muster", "Anne")


def test_a_partner_sees_only_a_local_id_of_its_own_category() -> None:
    ids = [LocalPersonId(category="CH.LU.1059", id="k-1"), LocalPersonId(category="CH.LU.1061", id="l-7")]
    assert local_id_for("CH.LU.1061", ids) == LocalPersonId(category="CH.LU.1061", id="l-7")
    assert local_id_for("CH.LU.1062", ids) is None
    assert local_id_for(None, ids) is None


def test_admin_commands_come_from_the_cli_or_an_active_operations_partner() -> None:
    assert partner_of_source(ADMIN_CLI_SOURCE) is None
    assert partner_of_source("urn:ch:lu:hub:partner:CH/CAN/LU/ops") == "CH/CAN/LU/ops"
    assert may_administer(("operations",), "active")
    assert not may_administer(("operations",), "suspended")
    assert not may_administer(("municipality",), "active")
