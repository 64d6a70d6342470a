"""``python -m modelshield.artifacts PATH... [--fail-on SEV] [--json]``: the scanner without the CLI.

Same exit codes as ``modelshield scan`` (0 clean, 1 findings at or above ``--fail-on``, 2 usage
error); used where start-up time matters (pre-commit hooks, the benchmark).
"""

from __future__ import annotations

import argparse
import json
import sys

from modelshield.artifacts import scan
from modelshield.errors import ModelShieldError
from modelshield.findings import Severity


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m modelshield.artifacts")
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--fail-on", default="medium")
    ap.add_argument("--json", action="store_true", help="print the JSON report to stdout")
    ap.add_argument("--hash", action="store_true", help="record each file's SHA-256")
    args = ap.parse_args(argv)
    try:
        gate = Severity.parse(args.fail_on)
        report = scan(list(args.paths), hash=args.hash)
    except (ValueError, ModelShieldError) as exc:
        print(f"error: {exc.cli_message() if isinstance(exc, ModelShieldError) else exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for fr in report.files:
            print(f"{fr.status.value:10} {fr.path} ({fr.format})" + (f" sha256={fr.sha256}" if fr.sha256 else ""))
            for f in fr.findings:
                at = f" @ {f.offset}" if f.offset is not None else ""
                print(f"    {f.severity.value:8} {f.rule_id}: {f.title}{at}")
    return 1 if report.blocks(gate) else 0


if __name__ == "__main__":
    sys.exit(main())
