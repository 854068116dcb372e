"""User-facing errors.

Every problem caused by the user's input (a bad spec, a malformed log file, an invalid config) is
raised as a subclass of :class:`LrlabError` with a one-line message that names the file, line or
field at fault. The command line prints that line and exits with status 2; anything else is a bug.
"""

import importlib
import reprlib
from types import ModuleType


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


class LrlabWarning(UserWarning):
    """Something in the input deserves a look, but the work went on (a sparse LR log, a fit whose
    points cannot pin its parameters down); the command line shows each as one
    ``lrlab: warning:`` line."""


class MissingExtraError(LrlabError, ModuleNotFoundError):
    """A feature needs an optional dependency that is not installed: the message names the extra
    that installs it. Both an `LrlabError` (the command line prints the line, exit status 2) and
    a `ModuleNotFoundError` (what code importing an optional feature expects to catch)."""


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import `module` for `what` (a feature, such as ``"lrlab.adapters.LRLabTrainer"``), or
    raise `MissingExtraError` naming the extra of lrlab that installs what it lacks, rather than
    Python's bare ``No module named ...``. `extra` may name several, comma-separated as pip takes
    them (``"torch,hf"``). `module` may be lrlab's own module of the feature, which imports the
    framework: an import of lrlab itself that fails is a bug, and is raised as it is."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        if (error.name or "").partition(".")[0] == "lrlab":
            raise
        extras = extra.split(",")
        needs = (
            f"the {extras[0]!r} extra"
            if len(extras) == 1
            else "the extras " + ", ".join(map(repr, extras[:-1])) + f" and {extras[-1]!r}"
        )
        problem = MissingExtraError(
            f"{what} needs {needs}: pip install 'lrlab[{extra}]' ({str(error)[:200]})"
        )
        problem.name = error.name  # as ModuleNotFoundError has it (its keyword is not inherited)
        raise problem from None
