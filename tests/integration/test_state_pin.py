"""PIN hashing (scp.service.pin): format, salt, constant-time verify, bulk parameters, rehash."""

from __future__ import annotations

import pytest

from scp.service import pin


def test_hash_format_and_salt() -> None:
    a, b = pin.hash_pin("123456"), pin.hash_pin("123456")
    assert a != b  # salted
    algo, log2n, r, p, salt, key = a.split("$")
    assert (algo, int(log2n), int(r), int(p)) == ("scrypt", 14, 8, 1)
    assert "123456" not in a
    assert pin.verify_pin("123456", a) and pin.verify_pin("123456", b)
    assert not pin.verify_pin("123457", a)


@pytest.mark.parametrize("bad", ["12345", "12345678901", "12a456", "", "１２３４５６", " 123456"])
def test_invalid_pins_rejected(bad: str) -> None:
    assert pin.pin_problem(bad)
    with pytest.raises(ValueError):
        pin.hash_pin(bad)


@pytest.mark.parametrize("good", ["123456", "0000000000", "9876543"])
def test_valid_pins(good: str) -> None:
    assert pin.pin_problem(good) is None


def test_bulk_params_verify_and_need_rehash() -> None:
    h = pin.hash_pin("24681357", pin.BULK)
    assert h.startswith("scrypt$10$8$1$")
    assert pin.verify_pin("24681357", h)
    assert pin.needs_rehash(h)
    assert not pin.needs_rehash(pin.hash_pin("24681357"))


@pytest.mark.parametrize("stored", ["", "scrypt$x$8$1$a$b", "bcrypt$1$2$3$4$5", "scrypt$14$8$1"])
def test_malformed_hash_never_matches(stored: str) -> None:
    assert not pin.verify_pin("123456", stored)
