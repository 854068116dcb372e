"""User-facing errors.

Every problem caused by the user's input (a bad spec, a malformed log file, an invalid config) is
raised as a subclass of :class:`LrlabError` with a one-line message that names the file, line or
field at fault. The command line prints that line and exits with status 2; anything else is a bug.
"""

import reprlib


def brief(value: object, limit: int = 60) -> str:
    """A short ``repr`` of a user's value for an error message: about `limit` characters at most
    (the middle elided, with the size of what was cut), so that a huge, deeply nested or
    multi-line value keeps the message one short line. Containers are shown a few items deep
    (`reprlib`), never walked whole."""
    shorten = reprlib.Repr()  # Python 3.11's Repr takes no keyword arguments
    shorten.maxstring = shorten.maxlong = shorten.maxother = limit
    shorten.maxlevel = 2
    shorten.maxlist = shorten.maxtuple = shorten.maxdict = shorten.maxset = 4
    text = shorten.repr(value)
    if len(text) > limit:
        half = limit // 2 - 2
        text = f"{text[:half]}...{text[-half:]}"
    if isinstance(value, (str, bytes)) and len(value) > limit:
        text += f" ({len(value)} characters)"
    elif isinstance(value, (list, tuple, dict, set)) and len(value) > shorten.maxlist:
        text += f" ({len(value)} items)"
    return text


class LrlabError(ValueError):
    """Bad input, explained in one line that names the field, file or line at fault."""


class SpecError(LrlabError):
    """A schedule spec is invalid: unknown name, missing field, wrong type or out-of-range value."""
