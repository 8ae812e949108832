"""The ``mgat`` command line: one module per command group, registered below.

Only the command line configures logging and shows progress bars.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from mgat.errors import MgatError

# Each module exposes ``register(subparsers)``; its parsers set ``func``.
COMMAND_MODULES = (
    "mgat.cli.data",
    "mgat.cli.train",
    "mgat.cli.features",
    "mgat.cli.bench",
    "mgat.cli.benchmark",
    "mgat.cli.tune",
    "mgat.cli.recommend",
    "mgat.cli.serve",
    "mgat.cli.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mgat", description="Multimodal graph attention recommendation."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = (
        logging.DEBUG
        if args.verbose
        else logging.WARNING
        if args.quiet
        else logging.INFO
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except MgatError as err:
        print(f"mgat: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mgat: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
