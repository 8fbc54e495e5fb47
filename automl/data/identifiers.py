"""Direct identifiers, found by pattern before anything is fitted: e-mail addresses, phone numbers, payment
card numbers (Luhn-valid), national ID numbers (US social security numbers, IBANs), IP addresses.

A column whose values mostly look like one of them is refused with one line that lists every such column and
the fix: `data.id_columns=[...]` (dropped, never written to the run directory) or `data.drop_columns=[...]`.
Columns the user named there are not looked at. Numbers stored as numbers are not looked at either: a
phone number that lost its formatting is indistinguishable from a measurement.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Callable

from automl.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: Share of a column's (sampled, non-missing) values that must match for it to be refused.
SHARE = 0.8
SAMPLE = 500

_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,20}$")
_SSN = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
_CARD = re.compile(r"^(?:\d[ -]?){13,19}$")


_DATE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$")


def _phone(v: str) -> bool:
    digits = sum(c.isdigit() for c in v)
    if not (_PHONE.match(v) and 7 <= digits <= 15) or _DATE.match(v):
        return False
    try:  # a number written as text ("1234.5678", "-1234567") is not a phone number
        float(v)
        return False
    except ValueError:
        # a separator or a leading + tells a formatted phone number from a plain integer code
        return any(c in v for c in "+ ()-")


def _luhn(v: str) -> bool:
    digits = [int(c) for c in v if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        d = d * 2 if i % 2 else d
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _ip(v: str) -> bool:
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return False
    return True


KINDS: dict[str, Callable[[str], bool]] = {
    "e-mail addresses": lambda v: bool(_EMAIL.match(v)),
    "payment card numbers": lambda v: bool(_CARD.match(v)) and _luhn(v),
    "national ID numbers": lambda v: bool(_SSN.match(v) or _IBAN.match(v.replace(" ", ""))),
    "IP addresses": _ip,
    "phone numbers": _phone,
}


def identifier_kind(series: "pd.Series") -> str | None:
    """What kind of direct identifier a text column holds, or None."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return None
    values = series.dropna()
    values = values[values.map(lambda v: isinstance(v, str))].astype(str).str.strip()
    values = values[values != ""]
    if len(values) == 0:
        return None
    sample = values.sample(min(SAMPLE, len(values)), random_state=0) if len(values) > SAMPLE else values
    for kind, matches in KINDS.items():
        if sum(map(matches, sample)) >= SHARE * len(sample):
            return kind
    return None


def refuse_direct_identifiers(features: "pd.DataFrame", where: str) -> None:
    """One `DataError` naming every feature column that holds direct identifiers, with the fix."""
    found = {col: kind for col in features.columns if (kind := identifier_kind(features[col])) is not None}
    if found:
        listed = ", ".join(f"{col!r} ({kind})" for col, kind in found.items())
        names = ",".join(found)
        raise DataError(f"{where} has direct identifiers in {listed}: they must not reach a model or the run "
                        f"directory; list them in data.id_columns=[{names}] (dropped, never written) or "
                        f"data.drop_columns=[{names}]")
