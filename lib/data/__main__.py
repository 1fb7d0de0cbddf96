"""``python -m lib.data summary [--data-root DIR]``: what data is on this machine."""

from __future__ import annotations

import argparse
import sys

from .summary import format_summary, summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("summary", help="one line per data set: present with its size, or missing")
    s.add_argument("--data-root", default=None, help="folder holding the full profile's data sets")
    args = parser.parse_args(argv)
    if args.command == "summary":
        print(format_summary(summary(args.data_root)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
