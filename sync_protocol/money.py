"""Money as people read it: an amount in a currency's minor units, written ``15.00 USD``.

Amounts travel as integers of the currency's minor unit (``amount_cents``: cents for USD and
EUR, yen for JPY, fils for KWD). The number of minor-unit digits is the currency's ISO 4217
exponent, taken from the ``iso4217`` package (the ISO 4217 maintenance agency's table); a
currency without one (gold, special drawing rights, ``XXX``) cannot price a raffle.

>>> format_money(1500, "USD")
'15.00 USD'
>>> format_money(1500, "JPY")
'1500 JPY'
>>> format_money(1500, "KWD")
'1.500 KWD'
"""

from __future__ import annotations

from types import MappingProxyType

from iso4217 import Currency

#: ISO 4217 alphabetic code -> exponent (minor-unit digits), for the currencies that have one
MINOR_UNITS: MappingProxyType[str, int] = MappingProxyType(
    {str(c.code): int(c.exponent) for c in Currency if c.exponent is not None}
)


def is_currency(code: str) -> bool:
    """Whether ``code`` is an ISO 4217 alphabetic code (upper case) of a currency with minor units."""
    return code in MINOR_UNITS


def format_money(amount_minor: int, currency: str) -> str:
    """``amount_minor`` minor units of ``currency`` as people read it: ``15.00 USD``.

    A code that is not an ISO 4217 currency is written as a count of its minor units
    (``1500 minor units of XYZ``), never guessed into a decimal.
    """
    digits = MINOR_UNITS.get(currency)
    if digits is None:
        return f"{amount_minor} minor units of {currency}"
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10**digits)
    if digits == 0:
        return f"{sign}{whole} {currency}"
    return f"{sign}{whole}.{fraction:0{digits}d} {currency}"
