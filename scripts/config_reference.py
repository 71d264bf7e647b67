"""Write docs/reference/config.md, the reference of every config group, option and key, from the schema
and the conf/ tree (the same topics `dd-run --help GROUP` prints).

    python scripts/config_reference.py            # (re)write the page
    python scripts/config_reference.py --check    # exit 1 if the committed page is stale

Run it after adding or changing a setting (an `option(...)` in dd_runner/config/schema*.py) or an option
file in conf/ (its leading comment paragraph is its description).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dd_runner.cli.reference_markdown import reference_markdown

PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "config.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page differs from the schema")
    parser.add_argument("--output", type=Path, default=PAGE, help="where to write the page")
    args = parser.parse_args()
    text = reference_markdown()
    if args.check:
        if not args.output.is_file() or args.output.read_text() != text:
            print(f"{args.output} is stale: run python scripts/config_reference.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
