"""The audit chain without I/O: canonical form, seals, and what verification names."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

import pytest

from hub.audit.chain import (
    GENESIS_HASH,
    AuditEntry,
    AuditKey,
    ChainBreak,
    ChainVerifier,
    Decision,
    Problem,
    SealedEntry,
    canonical,
    seal,
    seal_chain,
    seal_next,
)

KEY = AuditKey(bytes(range(32)))
OTHER_KEY = AuditKey(bytes(range(1, 33)))
AT = dt.datetime(2026, 5, 4, 8, 30, 15, 123456, tzinfo=dt.UTC)


def entry(**changes: object) -> AuditEntry:
    base = AuditEntry(
        decision=Decision.DELIVERED,
        case_id="eumzug-1",
        case_type="relocation",
        event_id="ev-1",
        event_type="ch.lu.hub.relocation.move-reported.v1",
        trace_id="0af7651916cd43dd8448eb211c80319c",
        partner_id="CH/CAN/LU/steuerverwaltung",
        sector="tax",
        delivery_event_id="dl-1",
        fields=("move_date", "person.first_name"),
        person_pseudonym="tax:abc",
        citizen_id="citizen-services:xyz",
        legal_basis="StHG Art. 4",
        purpose="assign the tax domicile",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def chain(n: int) -> list[SealedEntry]:
    return seal_chain(KEY, [entry(event_id=f"ev-{i}") for i in range(1, n + 1)], recorded_at=AT)


def verify(
    entries: list[SealedEntry], head: tuple[int, str] | None = None, **kw: object
) -> ChainBreak | None:
    verifier = ChainVerifier(KEY, **kw)  # type: ignore[arg-type]
    for sealed in entries:
        broken = verifier.feed(sealed)
        if broken is not None:
            return broken
    head_seq, head_hash = head or (verifier.last_seq, verifier.last_hash)
    return verifier.finish(head_seq, head_hash)


def test_canonical_form_is_sorted_compact_utf8_json_with_utc_microseconds() -> None:
    text = canonical(
        entry(legal_basis="Gebäudeversicherungsgesetz § 3", reason=None),
        seq=7,
        recorded_at=AT,
        key_id="k1",
        prev_hash="p" * 4,
    )
    expected = (
        '{"case_id":"eumzug-1","case_type":"relocation","citizen_id":"citizen-services:xyz",'
        '"decision":"delivered","delivery_event_id":"dl-1","event_id":"ev-1",'
        '"event_type":"ch.lu.hub.relocation.move-reported.v1","fields":["move_date","person.first_name"],'
        '"key_id":"k1","legal_basis":"Gebäudeversicherungsgesetz § 3",'
        '"partner_id":"CH/CAN/LU/steuerverwaltung","person_pseudonym":"tax:abc","prev_hash":"pppp",'
        '"purpose":"assign the tax domicile","reason":null,'
        '"recorded_at":"2026-05-04T08:30:15.123456+00:00","sector":"tax","seq":7,'
        '"trace_id":"0af7651916cd43dd8448eb211c80319c","v":1}'
    )
    assert text == expected.encode("utf-8")


def test_the_same_instant_in_another_time_zone_serialises_identically() -> None:
    zurich = AT.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert zurich.isoformat() != AT.isoformat()
    first = canonical(entry(), seq=1, recorded_at=AT, key_id="k", prev_hash=GENESIS_HASH)
    second = canonical(entry(), seq=1, recorded_at=zurich, key_id="k", prev_hash=GENESIS_HASH)
    assert first == second


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        canonical(entry(), seq=1, recorded_at=AT.replace(tzinfo=None), key_id="k", prev_hash=GENESIS_HASH)


@pytest.mark.parametrize(
    "change",
    [
        {"decision": Decision.WITHHELD},
        {"case_id": "eumzug-2"},
        {"case_type": "building-permit"},
        {"event_id": "ev-2"},
        {"event_type": "ch.lu.hub.case.completed.v1"},
        {"trace_id": "1" * 32},
        {"partner_id": "CH/MUN/1061/einwohnerdienste"},
        {"sector": "resident-registration"},
        {"delivery_event_id": None},
        {"fields": ("person.first_name", "move_date")},  # order is content too
        {"fields": ("move_date",)},
        {"person_pseudonym": "tax:other"},
        {"citizen_id": None},
        {"legal_basis": "RHG Art. 11"},
        {"purpose": "something else"},
        {"reason": "no approved subscription"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_every_field_is_sealed(change: dict[str, object]) -> None:
    original = seal(KEY, entry(), seq=1, recorded_at=AT, prev_hash=GENESIS_HASH)
    assert seal(KEY, entry(**change), seq=1, recorded_at=AT, prev_hash=GENESIS_HASH) != original


def test_position_time_predecessor_and_key_are_sealed() -> None:
    original = seal(KEY, entry(), seq=1, recorded_at=AT, prev_hash=GENESIS_HASH)
    assert seal(KEY, entry(), seq=2, recorded_at=AT, prev_hash=GENESIS_HASH) != original
    later = AT + dt.timedelta(microseconds=1)
    assert seal(KEY, entry(), seq=1, recorded_at=later, prev_hash=GENESIS_HASH) != original
    assert seal(KEY, entry(), seq=1, recorded_at=AT, prev_hash="1" * 64) != original
    assert seal(OTHER_KEY, entry(), seq=1, recorded_at=AT, prev_hash=GENESIS_HASH) != original
    assert len(original) == 64
    assert int(original, 16) >= 0


def test_a_key_shows_its_id_never_its_secret_and_must_be_long_enough() -> None:
    assert KEY.secret.hex() not in repr(KEY)
    assert len(KEY.key_id) == 16
    assert KEY.key_id != OTHER_KEY.key_id
    with pytest.raises(ValueError, match="at least 32 bytes"):
        AuditKey(b"short")


def test_an_intact_chain_verifies_and_counts_its_entries() -> None:
    entries = chain(5)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(entries))
    verifier = ChainVerifier(KEY)
    assert [verifier.feed(e) for e in entries] == [None] * 5
    assert verifier.finish(5, entries[-1].entry_hash) is None
    assert verifier.count == 5


def test_an_empty_chain_is_intact_at_the_genesis_head() -> None:
    assert verify([], head=(0, GENESIS_HASH)) is None


def test_a_changed_entry_is_named() -> None:
    entries = chain(5)
    entries[2] = dataclasses.replace(entries[2], entry=entry(event_id="ev-3", legal_basis="invented"))
    assert verify(entries) == ChainBreak(3, Problem.CHANGED, "entry 3 does not match its seal")


def test_a_changed_entry_resealed_without_the_key_is_still_changed() -> None:
    """Someone with database access only: re-seals with a key of their own, fixes the links."""
    entries = chain(4)
    forged = seal_next(
        OTHER_KEY, entry(event_id="ev-2", fields=()), seq=2, prev_hash=entries[0].entry_hash, recorded_at=AT
    )
    entries[1] = dataclasses.replace(forged, key_id=KEY.key_id)
    entries[2] = dataclasses.replace(entries[2], prev_hash=forged.entry_hash)
    broken = verify(entries)
    assert broken is not None
    assert (broken.seq, broken.problem) == (2, Problem.CHANGED)


def test_a_removed_entry_is_named() -> None:
    entries = chain(5)
    del entries[1]
    assert verify(entries, head=(5, chain(5)[-1].entry_hash)) == ChainBreak(
        2, Problem.REMOVED, "entry 2 missing (next is 3)"
    )


def test_several_removed_entries_are_named_as_a_range() -> None:
    entries = chain(6)
    del entries[1:4]
    broken = verify(entries)
    assert broken == ChainBreak(2, Problem.REMOVED, "entries 2 to 4 missing (next is 5)")


def test_entries_cut_off_the_end_are_found_through_the_head() -> None:
    full = chain(5)
    broken = verify(full[:3], head=(5, full[-1].entry_hash))
    assert broken == ChainBreak(4, Problem.REMOVED, "entries 4 to 5 missing (the head is at 5)")


def test_a_head_that_does_not_match_the_last_entry_is_a_break() -> None:
    entries = chain(3)
    broken = verify(entries, head=(3, "f" * 64))
    assert broken is not None
    assert (broken.seq, broken.problem) == (3, Problem.HEAD)
    behind = verify(entries, head=(2, entries[1].entry_hash))
    assert behind is not None
    assert behind.problem is Problem.HEAD


def test_swapped_entries_are_named_at_the_first_position() -> None:
    entries = chain(5)
    second, third = entries[1], entries[2]
    entries[1] = dataclasses.replace(third, seq=2)
    entries[2] = dataclasses.replace(second, seq=3)
    broken = verify(entries)
    assert broken is not None
    assert (broken.seq, broken.problem) == (2, Problem.CHANGED)


def test_a_correctly_sealed_entry_after_the_wrong_predecessor_is_reordered() -> None:
    """Two chains under the same key (e.g. a restored backup spliced in): seals hold, links not."""
    ours = chain(3)
    theirs = seal_chain(KEY, [entry(event_id=f"other-{i}") for i in range(3)], recorded_at=AT)
    broken = verify([ours[0], theirs[1], ours[2]])
    assert broken == ChainBreak(2, Problem.REORDERED, "entry 2 does not follow entry 1")


def test_an_entry_sealed_with_another_key_is_told_apart() -> None:
    entries = seal_chain(OTHER_KEY, [entry()], recorded_at=AT)
    broken = verify(entries)
    assert broken is not None
    assert (broken.seq, broken.problem) == (1, Problem.OTHER_KEY)
    assert OTHER_KEY.key_id in broken.detail


def test_anchors_catch_a_cut_off_end_with_a_rewound_head() -> None:
    full = chain(5)
    cut = full[:3]
    assert verify(cut) is None  # the chain alone cannot tell
    broken = verify(cut, anchors={5: full[4].entry_hash})
    assert broken == ChainBreak(5, Problem.ANCHOR, "entry 5 is anchored but the chain ends at 3")


def test_anchors_catch_entries_replaced_after_a_rewind() -> None:
    """Cut off, head rewound, and the registry appends anew: a chain intact in itself."""
    full = chain(5)
    relinked = full[:3]
    prev = full[2].entry_hash
    for seq in (4, 5):
        relinked.append(seal_next(KEY, entry(event_id=f"new-{seq}"), seq=seq, prev_hash=prev, recorded_at=AT))
        prev = relinked[-1].entry_hash
    assert verify(relinked) is None
    assert verify(relinked, anchors={4: full[3].entry_hash}) == ChainBreak(
        4, Problem.ANCHOR, "entry 4 differs from its anchor"
    )
    assert verify(full, anchors={4: full[3].entry_hash}) is None
