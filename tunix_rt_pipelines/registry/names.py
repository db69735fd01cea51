"""Names of models and aliases, and references to versions.

Names and aliases become parts of file names (downloads, bundles) and of asset keys, so they
are held to lower-case letters, digits, ``_`` and ``-``, starting with a letter or digit, at most
64 characters: nothing that can climb out of a folder (``..``, ``/``, ``\\``), no hidden files,
no shell-special characters.

A version reference is ``NAME:N`` (version number), ``NAME@ALIAS`` (where an alias points
now) or a unique prefix (at least 8 hex characters) of a version id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_ID_PREFIX = re.compile(r"[0-9a-f]{8,64}")


class InvalidName(ValueError):
    """A model name, alias or version reference that does not follow the rules above."""


def validate_name(value: str, *, what: str = "name") -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidName(
            f"{what} {value!r} is not allowed: use 1-64 lower-case letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return value


@dataclass(frozen=True)
class VersionRef:
    name: str | None = None  # the model name (None for an id prefix)
    number: int | None = None  # NAME:N
    alias: str | None = None  # NAME@ALIAS
    id_prefix: str | None = None  # a version id prefix


def parse_ref(ref: str) -> VersionRef:
    """``NAME:N``, ``NAME@ALIAS`` or a version id prefix, validated."""
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return VersionRef(name=validate_name(name), alias=validate_name(alias, what="alias"))
    if ":" in ref:
        name, number = ref.split(":", 1)
        if not number.isdigit() or int(number) < 1:
            raise InvalidName(f"version reference {ref!r}: the version after ':' must be a number from 1")
        return VersionRef(name=validate_name(name), number=int(number))
    if _ID_PREFIX.fullmatch(ref):
        return VersionRef(id_prefix=ref)
    raise InvalidName(f"version reference {ref!r}: expected NAME:N, NAME@ALIAS or a version id prefix (8+ hex)")
