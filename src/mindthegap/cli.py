"""The `mindthegap` console command: one sub-command per verb."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from mindthegap.grading import cli as grading_cli

    parser = argparse.ArgumentParser(prog="mindthegap", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    grading_cli.add_parser(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
