"""DCGM's blank values: sentinels a hostengine stores when a value is missing, unsupported or not permitted.

A blank never becomes a series; engines turn sentinels into ``None`` so later stages only test ``is None``.
"""

from __future__ import annotations

import math
from typing import Final

from otel_fakegpu.fields.catalog import ValueType

INT32_BLANK: Final = 0x7FFFFFF0
INT64_BLANK: Final = 0x7FFFFFFFFFFFFFF0
DOUBLE_BLANK: Final = 140737488355328.0
STRING_BLANK: Final = "<<<NULL>>>"
STRING_NOT_FOUND: Final = "<<<NOT_FOUND>>>"
STRING_NOT_SUPPORTED: Final = "<<<NOT_SUPPORTED>>>"
STRING_NOT_PERMISSIONED: Final = "<<<NOT_PERM>>>"

# Each sentinel has three siblings right above it: +1 not found, +2 not supported, +3 no permission.
_INT_BLANKS: Final = frozenset(base + offset for base in (INT32_BLANK, INT64_BLANK) for offset in range(4))
_DOUBLE_BLANKS: Final = frozenset(DOUBLE_BLANK + offset for offset in range(4))
_STRING_BLANKS: Final = frozenset((STRING_BLANK, STRING_NOT_FOUND, STRING_NOT_SUPPORTED, STRING_NOT_PERMISSIONED))
# Every sentinel of every type, and None: a value outside it that equals itself (not NaN) is no blank, found without
# the typed test of ``is_blank`` (engines store hundreds of thousands of readings at once). A reading equal to a
# sentinel of another type (2147483632.0) is in it too: ``is_blank`` then decides.
MAYBE_BLANK: Final = frozenset((*_INT_BLANKS, *_DOUBLE_BLANKS, *_STRING_BLANKS, None))

Value = int | float | str


def is_blank(value: Value | None) -> bool:
    """True for ``None`` and for every DCGM blank sentinel of any type."""
    if value is None:
        return True
    if isinstance(value, str):
        return value in _STRING_BLANKS
    if isinstance(value, float):
        return math.isnan(value) or value in _DOUBLE_BLANKS  # NaN is never a reading
    return value in _INT_BLANKS


def blank_for(value_type: ValueType) -> Value:
    """The sentinel DCGM would store for a blank value of this type."""
    if value_type is ValueType.STRING:
        return STRING_BLANK
    if value_type is ValueType.DOUBLE:
        return DOUBLE_BLANK
    return INT64_BLANK
