"""The vocabulary configuration code shares: the error a bad value raises and a resolved option's text with
where it came from. The option table (parsing) and the model (validation) both import it, so neither imports the
other; the stages that read a file the user names raise its error too."""

from __future__ import annotations

from dataclasses import dataclass


class ConfigError(ValueError):
    """A bad flag, environment value or file; the message is the one line the user sees."""


@dataclass(frozen=True)
class OptionValue:
    """An option's text and its origin: ``flag``, ``env`` or ``default`` (then ``source`` is the flag)."""

    text: str | None
    source: str
    origin: str

    @property
    def given(self) -> bool:
        return self.origin != "default"
