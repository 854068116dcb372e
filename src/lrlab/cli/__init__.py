"""The ``lrlab`` command: one entry point, one sub-command module per part of the toolkit.

Each module listed in ``_COMMAND_MODULES`` exposes ``register(subparsers)``, which adds its
sub-commands; each sub-command's handler takes the parsed arguments and returns an exit code.

Every error is one ``lrlab: error: ...`` line on stderr with exit status 2: an `LrlabError`
raised by the checks of the input, an argument argparse refuses, or a file-system error (a full
disk, a folder without write permission: ``OSError``, named by its file). The line is cleaned
first (terminal escape codes, which PyTorch puts in some messages, removed; newlines and other
control characters turned into spaces or escapes), so no input can draw on the terminal or span
lines. Anything else is a bug in lrlab: it is reported as one ``lrlab: internal error:`` line
with exit status 70, the traceback shown when ``LRLAB_TRACEBACK=1`` is set.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from typing import NoReturn

from lrlab import __version__
from lrlab.errors import LrlabError

_COMMAND_MODULES = (
    "lrlab.cli.schedule_commands",
    "lrlab.cli.law_commands",
    "lrlab.cli.tunnel_commands",
    "lrlab.cli.design_commands",
    "lrlab.cli.study_commands",
    "lrlab.cli.watch_commands",
    "lrlab.cli.reproduce_commands",
)


class _Parser(argparse.ArgumentParser):
    """argparse's parser with lrlab's one-line errors (argparse prints the usage first), a pointer
    to ``--help`` instead; sub-command parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"lrlab: error: {self.prog}: {one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lrlab",
        description="Design, predict and verify learning-rate schedules.",
    )
    parser.add_argument("--version", action="version", version=f"lrlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:  # a real missing dependency, not a missing module
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except LrlabError as error:
        print(f"lrlab: error: {one_line(str(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lrlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of the output left (`lrlab schedule show ... | head`): stop quietly, as
        # Unix tools do, and keep Python from failing again on flushing stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool the signal stopped
    except OSError as error:
        print(f"lrlab: error: {one_line(_os_error_text(error))}", file=sys.stderr)
        return 2
    except Exception as error:
        if os.environ.get("LRLAB_TRACEBACK") == "1":
            raise
        print(
            f"lrlab: internal error: {type(error).__name__}: {one_line(str(error), 200)} (a bug "
            "in lrlab: please report it; LRLAB_TRACEBACK=1 shows where)",
            file=sys.stderr,
        )
        return 70


def _os_error_text(error: OSError) -> str:
    """An `OSError` as ``FILE: reason``, the way lrlab names files in its other errors."""
    reason = error.strerror or str(error)
    names = [name for name in (error.filename, error.filename2) if name is not None]
    return f"{' -> '.join(map(str, names))}: {reason}" if names else reason


# Terminal escape sequences: CSI (colours, cursor moves) and OSC (titles, links).
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def one_line(text: str, limit: int = 1000) -> str:
    """`text` made safe to print as one line: terminal escape sequences removed, whitespace runs
    (newlines included) made one space, other control characters escaped, and the middle of a
    text longer than `limit` characters elided (errors echo short pieces of input; this is the
    last guard)."""
    text = " ".join(_ESCAPES.sub("", text).split())
    text = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
    if len(text) > limit:
        half = limit // 2 - 2
        text = f"{text[:half]} ... {text[-half:]}"
    return text


if __name__ == "__main__":
    sys.exit(main())
