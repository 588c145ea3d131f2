"""The image e2e/image/build.py makes here is the image the Dockerfile's final
stage describes: same user, working directory, command, ports, labels, files
and ownership; and its binaries start inside it under runc, as uid 65532, with
only the image's own libraries.

Needs the release binaries (RUNNEL_BIN_DIR, the directory of RUNNEL_BROKER_BIN,
or target/release); scripts/test builds them before this runs.
"""

import gzip
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from conftest import REPO
from test_dockerfile import stage

BUILD = REPO / "e2e" / "image" / "build.py"


def bin_dir() -> Path:
    if os.environ.get("RUNNEL_BIN_DIR"):
        return Path(os.environ["RUNNEL_BIN_DIR"])
    if os.environ.get("RUNNEL_BROKER_BIN"):
        return Path(os.environ["RUNNEL_BROKER_BIN"]).parent
    return REPO / "target" / "release"


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    d = bin_dir()
    if not ((d / "runnel-broker").is_file() and (d / "runnel-operator").is_file()):
        pytest.skip(f"no release binaries in {d} (cargo build --release)")
    out = tmp_path_factory.mktemp("image")
    res = subprocess.run(["python3", str(BUILD), "--bin-dir", str(d), "--out", str(out)],
                         check=True, capture_output=True, text=True)
    info = json.loads(res.stdout)
    with tarfile.open(info["archive"]) as t:
        def blob(digest):
            return t.extractfile(f"blobs/sha256/{digest.split(':', 1)[1]}").read()
        index = json.loads(t.extractfile("index.json").read())
        desc = index["manifests"][0]
        manifest = json.loads(blob(desc["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        layers = [gzip.decompress(blob(l["digest"])) for l in manifest["layers"]]
    files = {}
    for raw in layers:
        with tarfile.open(fileobj=io.BytesIO(raw)) as lt:
            for m in lt.getmembers():
                files["/" + m.name] = (m, lt.extractfile(m).read() if m.isfile() else None)
    return {"info": info, "desc": desc, "config": config, "files": files, "layers": layers,
            "out": out}


def runtime():
    return stage("runtime")


def test_name_is_the_operators_default_image(image):
    version = re.search(r'^version\s*=\s*"([^"]+)"', (REPO / "Cargo.toml").read_text(), re.M).group(1)
    assert image["desc"]["annotations"]["io.containerd.image.name"] == f"ghcr.io/runnel-dev/runnel:{version}"
    # the operator's default --broker-image / chart image
    lib = (REPO / "operator" / "src" / "lib.rs").read_text()
    assert '"ghcr.io/runnel-dev/runnel:"' in lib


def test_config_matches_the_dockerfile(image):
    cfg = image["config"]["config"]
    steps = runtime()
    user = [a for op, a in steps if op == "USER"]
    workdir = [a for op, a in steps if op == "WORKDIR"]
    cmd = [json.loads(a) for op, a in steps if op == "CMD"]
    expose = [a for op, a in steps if op == "EXPOSE"]
    assert [cfg["User"]] == user
    assert [cfg["WorkingDir"]] == workdir
    assert [cfg["Cmd"]] == cmd
    assert "Entrypoint" not in cfg and "ENTRYPOINT" not in [op for op, _ in steps]
    assert set(cfg["ExposedPorts"]) == {f"{p}/tcp" for p in expose[0].split()}
    labels = " ".join(a for op, a in steps if op == "LABEL")
    for key, value in cfg["Labels"].items():
        if key == "org.opencontainers.image.version":
            continue  # the Dockerfile takes it from ARG VERSION
        assert f'{key}="{value}"' in labels, key


def test_files_match_the_dockerfile(image):
    files = image["files"]
    # every COPY destination of the final stage is in the image
    for op, args in runtime():
        if op != "COPY":
            continue
        parts = [p for p in args.split() if not p.startswith("--")]
        srcs, dst = parts[:-1], parts[-1]
        if dst.endswith("/"):
            for s in srcs:
                assert dst + Path(s).name in files, (args, dst + Path(s).name)
        else:
            assert dst in files, args
        if "--chown=65532:65532" in args:
            m, _ = files[dst]
            assert (m.uid, m.gid) == (65532, 65532), dst
    for b in ("runnel-broker", "runnel-operator"):
        m, _ = files[f"/usr/local/bin/{b}"]
        assert m.mode & 0o111 and m.uid == 0
    m, _ = files["/var/lib/runnel/data"]
    assert (m.uid, m.gid) == (65532, 65532)
    # the Dockerfile's sed over config/server.properties
    _, props = files["/etc/runnel/server.properties"]
    text = props.decode()
    assert re.search(r"^listeners=PLAINTEXT://0\.0\.0\.0:9092,", text, re.M)
    assert re.search(r"^log\.dirs=/var/lib/runnel/data/kafka-log$", text, re.M)
    # distroless/cc: glibc, libm, libgcc_s, the nonroot user, certificates, time zones
    for f in ("/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",
              "/lib64/ld-linux-x86-64.so.2", "/etc/ssl/certs/ca-certificates.crt",
              "/usr/share/zoneinfo/UTC"):
        assert f in files, f
    _, passwd = files["/etc/passwd"]
    assert "nonroot:x:65532:65532:" in passwd.decode()
    # no shell, as distroless
    assert not any(p in files for p in ("/bin/sh", "/usr/bin/sh", "/bin/bash"))


def test_deterministic(image, tmp_path):
    res = subprocess.run(["python3", str(BUILD), "--bin-dir", str(bin_dir()), "--out", str(tmp_path)],
                         check=True, capture_output=True, text=True)
    assert json.loads(res.stdout)["manifest"] == image["info"]["manifest"]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="runc as root is needed")
def test_binaries_run_in_the_image_under_runc(image, tmp_path):
    """The image's own libraries suffice and the process runs as 65532."""
    rootfs = tmp_path / "bundle" / "rootfs"
    rootfs.mkdir(parents=True)
    for raw in image["layers"]:
        with tarfile.open(fileobj=io.BytesIO(raw)) as lt:
            lt.extractall(rootfs, filter="fully_trusted")
    bundle = rootfs.parent
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["user"] = {"uid": 65532, "gid": 65532}
    spec["process"]["cwd"] = image["config"]["config"]["WorkingDir"]
    spec["process"]["env"] = image["config"]["config"]["Env"]
    spec["root"]["readonly"] = True
    for argv, expect in ((["/usr/local/bin/runnel-operator", "--help"], "runnel-operator"),
                         (["/usr/local/bin/runnel-broker", "--help"], "runnel-broker")):
        spec["process"]["args"] = argv
        (bundle / "config.json").write_text(json.dumps(spec))
        cid = f"runnel-image-test-{os.getpid()}"
        res = subprocess.run(["runc", "run", cid], cwd=bundle, capture_output=True, text=True,
                             timeout=60)
        subprocess.run(["runc", "delete", "-f", cid], capture_output=True)
        out = res.stdout + res.stderr
        assert res.returncode == 0, out
        assert expect in out.lower(), out
