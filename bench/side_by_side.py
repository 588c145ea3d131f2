"""Runs one measurement per broker kind, each in a fresh process (the
cluster harness of tests/cluster reads CLUSTER_APACHE_KAFKA on import), and
collects the `RESULT {json}` line each prints. Used by roll.py and txn.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_kinds(script: str, kinds: list[str], args: list[str]) -> list[dict]:
    rows = []
    for kind in kinds:
        env = dict(os.environ, CLUSTER_APACHE_KAFKA="1" if kind == "kafka" else "0")
        r = subprocess.run([sys.executable, script, "--one", kind, *args],
                           env=env, capture_output=True, text=True)
        res = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
        if res:
            rows.append(json.loads(res[-1][len("RESULT "):]))
        else:
            print(f"{kind}: failed (exit {r.returncode}): {r.stderr.strip()[-800:]}", file=sys.stderr)
    return rows
