"""make report: one page that says whether a reproduction worked.

    make report                       # the latest demo run (runs/demo)
    make report RUN=runs/paper_s1     # any pipeline run dir (curate/ train/ eval/ inside)

Writes report.md and report.html (self-contained, images embedded) into the run dir.
Stages that have not run yet are named as such, so it works on partial runs.
"""

import argparse
import os
import sys
from pathlib import Path

from s1.report.build import build_report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    runs = Path(os.environ.get("S1_RUNS", "runs"))
    p.add_argument("run", nargs="?", default=str(runs / "demo"), help="pipeline run dir (default: runs/demo)")
    args = p.parse_args()
    try:
        md, html = build_report(args.run)
    except FileNotFoundError as e:
        print(f"report: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"report written: {md}\n                {html}")


if __name__ == "__main__":
    main()
