"""What every generator in hack/ shares: write its file, or with --check say that it is stale."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def main(target: Path, render: Callable[[], str], description: str, argv: list[str] | None = None) -> int:
    """Write `render()` to `target`; with ``--check`` only compare, exit 1 when the file is stale."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help=f"only compare; exit 1 when {target.name} is stale")
    args = parser.parse_args(argv)
    wanted = render()
    if args.check:
        if not target.exists() or target.read_text() != wanted:
            print(f"Error: {target.name} is stale; run `python hack/{Path(sys.argv[0]).name}`", file=sys.stderr)
            return 1
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(wanted)
    print(target.name)
    return 0
