"""Prices: rate × hours and a 10 % fee, each rounded half-up to the cent."""

from __future__ import annotations

import pytest

from gigco.lifecycle.pricing import FEE_RATE, Price, price_for


@pytest.mark.parametrize(
    ("rate", "hours", "subtotal", "fee"),
    [
        (9000, 2, 18000, 1800),  # plumbing, 2 h: the README's example
        (9000, 2.5, 22500, 2250),
        (9000, 1.75, 15750, 1575),
        (333, 1.5, 500, 50),  # 499.5 rounds up, not to even
        (1005, 1, 1005, 101),  # a fee of 100.5 rounds up, not to even (100)
        (1025, 1, 1025, 103),  # 102.5 → 103
        (1000, 0.1, 100, 10),  # 0.1 h is exact through its decimal text
        (4567, 0.25, 1142, 114),  # 1141.75 → 1142, fee 114.2 → 114
    ],
)
def test_price_rounds_each_part_half_up(rate: int, hours: float, subtotal: int, fee: int) -> None:
    price = price_for(rate, hours)
    assert price == Price(subtotal_cents=subtotal, fee_cents=fee)
    assert price.price_cents == subtotal + fee


def test_the_fee_is_ten_percent_of_the_subtotal() -> None:
    assert str(FEE_RATE) == "0.10"
    for hours in (0.5, 1, 3, 8, 12):
        price = price_for(9000, hours)
        assert price.fee_cents * 10 == price.subtotal_cents


def test_parts_are_integer_cents() -> None:
    price = price_for(7777, 1.33)
    assert all(type(v) is int for v in (price.subtotal_cents, price.fee_cents, price.price_cents))
