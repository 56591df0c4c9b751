from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from contracts import Ahvn13, ahvn13_check_digit, is_valid_ahvn13

AHVN13: TypeAdapter[str] = TypeAdapter(Ahvn13)


def with_wrong_check_digit(vn: str) -> str:
    return vn[:12] + str((int(vn[12]) + 1) % 10)


def test_computes_the_ean13_check_digit_of_the_documented_example() -> None:
    assert ahvn13_check_digit("756123456789") == 7
    assert is_valid_ahvn13("7561234567897")


def test_accepts_an_ahvn13_with_a_computed_check_digit(valid_vn: str) -> None:
    assert AHVN13.validate_python(valid_vn) == valid_vn


def test_normalises_the_dotted_form_to_digits() -> None:
    assert AHVN13.validate_python("756.1234.5678.97") == "7561234567897"
    assert is_valid_ahvn13("756.1234.5678.97")


def test_rejects_ahvn13_with_wrong_check_digit(valid_vn: str) -> None:
    wrong = with_wrong_check_digit(valid_vn)
    assert not is_valid_ahvn13(wrong)
    with pytest.raises(ValidationError, match="check digit"):
        AHVN13.validate_python(wrong)


def test_rejects_ahvn13_without_the_swiss_prefix() -> None:
    first12 = "757123456789"
    number = first12 + str(ahvn13_check_digit(first12))
    assert not is_valid_ahvn13(number)
    with pytest.raises(ValidationError, match="start with 756"):
        AHVN13.validate_python(number)


@pytest.mark.parametrize("number", ["756123456789", "75612345678970", "", "756123456789x"])
def test_rejects_ahvn13_of_the_wrong_length_or_with_non_digits(number: str) -> None:
    assert not is_valid_ahvn13(number)
    with pytest.raises(ValidationError, match="13 digits"):
        AHVN13.validate_python(number)


@pytest.mark.parametrize("number", ["7561.234.5678.97", "756.1234.5678.9.7", "756 1234 5678 97"])
def test_rejects_separators_other_than_the_usual_dot_grouping(number: str) -> None:
    assert not is_valid_ahvn13(number)


def test_rejects_non_ascii_digits() -> None:
    assert not is_valid_ahvn13("\u0667\u0665\u06661234567897")  # Arabic-Indic 756


def test_rejects_an_ahvn13_given_as_a_number() -> None:
    with pytest.raises(ValidationError):
        AHVN13.validate_python(7561234567897)


def test_validation_message_does_not_repeat_the_number(valid_vn: str) -> None:
    wrong = with_wrong_check_digit(valid_vn)
    with pytest.raises(ValidationError) as caught:
        AHVN13.validate_python(wrong)
    assert wrong not in str(caught.value.errors(include_input=False))


def test_check_digit_needs_exactly_twelve_digits() -> None:
    with pytest.raises(ValueError, match="12 digits"):
        ahvn13_check_digit("75612345678")
