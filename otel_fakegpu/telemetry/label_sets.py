"""Attribute sets that never change once made: the one type the layers above may test for.

The pipeline builds each entity's attribute set once and reuses it while the entity's identity holds. A set that
cannot change lets a consumer cache what it derives from it by identity (the renderer caches each set's label text
so). ``FixedAttributes`` says only that; it depends on nothing of the OpenTelemetry SDK. The SDK fast path
(sdk_fastpath.py) makes a subclass of it that also carries the SDK's lookup key; when that hook is not installed,
sets are plain ``FixedAttributes`` and the SDK's own path copies them as it copies any mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, NoReturn


class FixedAttributes(dict[str, str]):
    """An attribute set (our labels: text values) that is never changed after it is made."""

    __slots__ = ()
    made: ClassVar[int] = 0  # sets made so far in this process: when it moves, some old set may be gone (sdk_prune)

    def __init__(self, attributes: Mapping[str, str]) -> None:
        super().__init__(attributes)
        FixedAttributes.made += 1

    def _read_only(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot change: build a new set")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _read_only

    def __reduce__(self) -> tuple[type[dict[str, str]], tuple[dict[str, str]]]:
        return dict, (dict(self),)  # pickles (and deep-copies) as the plain dict it equals
