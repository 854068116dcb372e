"""``lrlab reproduce``: published claims about schedules, checked in the wind tunnel."""

from __future__ import annotations

import argparse

from lrlab.cli.run_options import report_progress, report_written
from lrlab.cli.tunnel_commands import add_backend_options, backend_from_args
from lrlab.errors import LrlabError


def register(subparsers: argparse._SubParsersAction) -> None:
    reproduce = subparsers.add_parser(
        "reproduce",
        help="check published schedule claims in the wind tunnel (verdicts, figures, HTML)",
        description="Train what each claim needs in the wind tunnel (finished runs are reused, "
        "interrupted ones resumed), measure it, and write OUT/claims.json and OUT/claims.html "
        "with each claim's verdict against the measured noise. CLAIM is a name or number from "
        "--list; none, or 'all', runs every claim.",
    )
    reproduce.add_argument("claims", nargs="*", metavar="CLAIM", help="claims to run")
    reproduce.add_argument(
        "--list", action="store_true", help="list the claims (number, name, title, paper)"
    )
    reproduce.add_argument("--out", default="claims", help="output folder (default: ./claims)")
    reproduce.add_argument(
        "--scale",
        choices=["tiny", "small", "full"],
        default="tiny",
        help="tiny: every claim on 2 CPU cores in under an hour (default); small: a many-core "
        "machine; full: a GPU (see docs/claims.md)",
    )
    add_backend_options(reproduce)
    reproduce.set_defaults(handler=run_reproduce)


def run_reproduce(args: argparse.Namespace) -> int:
    from lrlab.reproduce import claims, select

    if args.list:
        if args.claims:
            raise LrlabError("--list lists every claim; drop the CLAIM arguments")
        for cls in claims().values():
            print(f"{cls.number}  {cls.name:<16} {cls.title}")
            print(f"   {cls.paper}")
        return 0
    chosen = select(args.claims)
    backend = backend_from_args(args)
    from lrlab.reproduce.runner import PAGE, RESULTS, reproduce

    records = reproduce(chosen, args.out, args.scale, backend=backend, progress=report_progress)
    ran = {cls.name for cls in chosen}
    for record in records:
        if record["name"] in ran:
            print(f"{record['number']}. {record['name']}: {record['verdict']}")
            print(f"   {record['summary']}")
    report_written(f"{args.out}/{RESULTS}")
    report_written(f"{args.out}/{PAGE}")
    return 0
