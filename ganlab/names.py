"""Experiment names: safe to use as a directory name, safe to print.

A name becomes part of a run directory (``runs/0042-NAME``) and is shown in
every listing, so it is a slug: ASCII letters, digits and ``_ - . = + , @``,
starting with a letter, digit or ``_``, no ``..``, at most
:data:`MAX_NAME_LEN` characters. A name a user types is refused when it
breaks these rules (:func:`check_name`); a name generated from a sweep's
values is made to fit (:func:`slugify`), since the user never typed it.

Names already stored in the queue are untrusted all the same (another
client, an older ganlab or a hostile user may have written any string), so
paths are derived with :func:`slugify` again and text is printed through
:func:`printable`.
"""

from __future__ import annotations

import hashlib
import re

from ganlab.errors import ConfigError

#: The ``experiments.name`` column is ``VARCHAR(200)``; the same bound holds on every database.
MAX_NAME_LEN = 200
NAME_RULE = (
    f"use 1-{MAX_NAME_LEN} characters from A-Z a-z 0-9 _ - . = + , @ "
    "(no '/', no spaces, no '..'), starting with a letter, digit or _"
)

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=+,@-]*")
# A run of other characters and of two or more dots: each run becomes one "_".
_UNSAFE = re.compile(r"(?:[^A-Za-z0-9_.=+,@-]|\.{2,})+")
_LEADING = re.compile(r"^[^A-Za-z0-9_]+")
_HASH_LEN = 8
# How much of a refused value an error message quotes: a 5,000-character name would bury the rule.
_SHOWN = 60


def is_name(text: object) -> bool:
    """True if ``text`` is a valid name as it stands."""
    return (
        isinstance(text, str)
        and 0 < len(text) <= MAX_NAME_LEN
        and _NAME.fullmatch(text) is not None
        and ".." not in text
    )


def check_name(name: object, *, what: str = "name") -> str:
    """``name`` itself if valid, else a one-line ConfigError quoting it (``what`` says where it came from)."""
    if is_name(name):
        return name  # type: ignore[return-value]
    raise ConfigError(f"{what} {shown(name)} is not allowed; {NAME_RULE}")


def shown(value: object) -> str:
    """A value quoted for an error message: escaped (repr) and cut short when long."""
    if isinstance(value, str) and len(value) > _SHOWN:
        return f"{value[:_SHOWN]!r}... ({len(value)} characters)"
    return repr(value)


def slugify(text: str) -> str:
    """``text`` made a valid name; a valid name comes back unchanged.

    Each run of other characters or dots becomes one ``_`` (``path=/data/faces``
    -> ``path=_data_faces``, ``x/../y`` -> ``x_y``), leading punctuation is
    dropped. A name too long keeps its start and ends with a hash of the
    whole text, so two long names that differ only at the end stay apart.
    """
    if is_name(text):
        return text
    slug = _LEADING.sub("", _UNSAFE.sub("_", text)) or "_"
    if len(slug) > MAX_NAME_LEN:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LEN]
        slug = f"{slug[:MAX_NAME_LEN - _HASH_LEN - 1]}-{digest}"
    return slug


# Bidirectional overrides and isolates reorder what a terminal shows; str.isprintable() lets
# none of them through, nor ESC, other C0/C1 controls, DEL or line separators.
def printable(text: str, keep: str = "") -> str:
    """``text`` with every non-printable character shown as its escape (``\\x1b``, ``\\u202e``).

    Terminal escape sequences in stored names, tags or errors then print as
    harmless text. Characters in ``keep`` (e.g. ``"\\n"``) pass unchanged.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else ascii(c)[1:-1] for c in text)


__all__ = ["MAX_NAME_LEN", "NAME_RULE", "check_name", "is_name", "printable", "shown", "slugify"]
