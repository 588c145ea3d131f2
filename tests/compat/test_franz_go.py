"""franz-go (Go, github.com/twmb/franz-go v1.22) transactional producer
(issue 14): tests/compat/go/franztxn commits one transaction, aborts one,
and a second producer with the same transactional id fences a zombie whose
transaction is running (its commit fails: PRODUCER_FENCED or
INVALID_PRODUCER_EPOCH); a franz-go read_committed consumer then sees
exactly the committed records.

The program is built once per source version into
$RUNNEL_CACHE/franztxn/<hash>/ (modules in $RUNNEL_CACHE/go-mod, fetched by
scripts/install-test-deps.sh; the build cache in $RUNNEL_CACHE/go-build).
Passes against Apache Kafka 4.1.1 too (COMPAT_APACHE_KAFKA=1).
"""

import hashlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

import compat_util as cu

SRC = Path(__file__).resolve().parent / "go" / "franztxn"
CACHE = Path(os.environ.get("RUNNEL_CACHE", Path.home() / ".cache" / "runnel"))


def go_env():
    env = dict(os.environ)
    env.setdefault("GOMODCACHE", str(CACHE / "go-mod"))
    env.setdefault("GOCACHE", str(CACHE / "go-build"))
    env["GOFLAGS"] = "-mod=readonly"
    return env


def franztxn_binary():
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((SRC / name).read_bytes())
    out = CACHE / "franztxn" / digest.hexdigest()[:16] / "franztxn"
    if out.exists():
        return out
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        pytest.skip("no Go toolchain (scripts/install-test-deps.sh)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    p = subprocess.run([go, "build", "-o", str(tmp), "."], cwd=SRC, env=go_env(),
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"go build failed:\n{p.stderr[-3000:]}"
    tmp.replace(out)
    return out


@pytest.mark.timeout(900)
def test_franz_go_commit_abort_fencing_and_read_committed(broker):
    binary = franztxn_binary()
    topic = cu.unique_topic("txn-franz")
    cu.create_topic(broker.bootstrap, topic, partitions=2)
    tid = f"txn-franz-{uuid.uuid4().hex[:8]}"
    p = subprocess.run([str(binary), broker.bootstrap, topic, "2", tid],
                       capture_output=True, text=True, timeout=180)
    print(p.stdout)
    detail = f"\n--- stdout ---\n{p.stdout}\n--- stderr ---\n{p.stderr[-3000:]}"
    assert p.returncode == 0 and "RESULT OK" in p.stdout, detail
    for step in ("commit", "abort", "fresh-commit", "zombie-fenced"):
        assert f"STEP {step} OK" in p.stdout, detail
    seen = next(ln for ln in p.stdout.splitlines() if ln.startswith("SEEN "))
    seen = sorted(v for v in seen[len("SEEN "):].split(",") if v)
    want = sorted(f"{tag}-{part}-{i}" for tag in ("c1", "c2") for part in range(2)
                  for i in range(3))
    assert seen == want, f"read_committed saw {seen}, wanted {want}{detail}"
