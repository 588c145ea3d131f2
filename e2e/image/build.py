#!/usr/bin/env python3
"""Build Runnel's bundled image as an OCI archive, without Docker or a registry.

The image is what the Dockerfile's final stage produces: the distroless/cc
layout (glibc, libm, libgcc_s, CA certificates, tzdata, /etc/passwd with the
``nonroot`` user 65532), ``/usr/local/bin/runnel-broker`` and
``/usr/local/bin/runnel-operator``, ``/etc/runnel/server.properties`` (the
repo's single-node config listening on all interfaces, data under
``/var/lib/runnel/data``), ``/var/lib/runnel`` owned by 65532, ``USER
65532:65532``, ``WORKDIR /var/lib/runnel``, no ENTRYPOINT and the broker as
CMD. The root filesystem is made from this host's Debian files (the same
Debian 12 the Dockerfile's stages use), so nothing is pulled.

    e2e/image/build.py --bin-dir target/release --out DIR
        writes DIR/runnel.oci.tar (import with `ctr -n k8s.io images import`)
        and DIR/pause.oci.tar (the pod sandbox image, a static pause binary
        compiled here), and prints their image names.

Everything is deterministic (sorted entries, mtime 0), so an unchanged input
gives the same digests and a cached archive can be reused.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NONROOT = 65532


def cargo_version() -> str:
    text = (REPO / "Cargo.toml").read_text()
    m = re.search(r'^\[workspace\.package\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.M | re.S)
    if not m:
        sys.exit("build.py: cannot find the workspace version in Cargo.toml")
    return m.group(1)


IMAGE_REPO = "ghcr.io/runnel-dev/runnel"
PAUSE_NAME = "registry.k8s.io/pause:3.10"
CLIENT_NAME = "runnel.dev/e2e/client:1"
COREDNS_NAME = "runnel.dev/e2e/coredns:1"
LOCAL_PATH_NAME = "runnel.dev/e2e/local-path:1"
# The operator's default Connect image (runnel_operator::DEFAULT_CONNECT_IMAGE).
CONNECT_NAME = "ghcr.io/runnel-dev/runnel-connect:kafka-4.1.1"
# The same workers without any plugin (the e2e downloads its plugin: spec.build).
CONNECT_BARE_NAME = "ghcr.io/runnel-dev/runnel-connect:kafka-4.1.1-bare"
JRE_HOME = Path("/usr/lib/jvm/java-17-openjdk-amd64")
# Parts of Debian's JDK a Connect worker does not run.
JRE_SKIP = {"jmods", "include", "man", "docs", "legal", "demo", "lib/src.zip"}
# Shared libraries the headless JVM loads (the AWT/X11 ones are left out).
JRE_NATIVE = ["bin/java", "lib/server/libjvm.so", "lib/libjli.so", "lib/libjava.so", "lib/libnet.so",
              "lib/libnio.so", "lib/libzip.so", "lib/libjimage.so", "lib/libverify.so",
              "lib/libmanagement.so", "lib/libmanagement_ext.so", "lib/libextnet.so"]

# The distroless/cc files the binaries and a Kafka broker need. Paths as on
# Debian 12 (merged /usr: /lib -> usr/lib in the image as in distroless).
LIBS = [
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib/x86_64-linux-gnu/libm.so.6",
    "/lib/x86_64-linux-gnu/libgcc_s.so.1",
    "/lib64/ld-linux-x86-64.so.2",
]

PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
NSSWITCH = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n"
OS_RELEASE = 'PRETTY_NAME="Runnel image (Debian GNU/Linux 12 files)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'

PAUSE_C = r"""
/* The pod sandbox process: sleeps until SIGINT/SIGTERM, reaps orphans. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
  struct sigaction s = {0}, r = {0};
  s.sa_handler = stop;
  r.sa_handler = reap;
  r.sa_flags = SA_NOCLDSTOP;
  if (sigaction(SIGINT, &s, NULL) < 0 || sigaction(SIGTERM, &s, NULL) < 0 ||
      sigaction(SIGCHLD, &r, NULL) < 0) return 1;
  for (;;) pause();
}
"""


class Layer:
    """A deterministic tar layer built in memory."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.entries: dict[str, tuple] = {}

    def _info(self, path: str, kind, mode: int, uid: int, gid: int) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(path.lstrip("/"))
        ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = kind, mode, uid, gid, 0
        ti.uname = ti.gname = ""
        return ti

    def dir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        self.entries[path.rstrip("/")] = ("dir", mode, uid, gid, None)

    def file(self, path: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
        self.entries[path] = ("file", mode, uid, gid, data)

    def symlink(self, path: str, target: str) -> None:
        self.entries[path] = ("sym", 0o777, 0, 0, target)

    def tree(self, src: Path, dst: str) -> None:
        """Copies a host directory tree (files, dirs, symlinks)."""
        for root, dirs, files in os.walk(src):
            rel = os.path.relpath(root, src)
            base = dst if rel == "." else f"{dst}/{rel}"
            self.dir(base)
            for name in dirs + files:
                p = Path(root) / name
                target = f"{base}/{name}"
                if p.is_symlink():
                    self.symlink(target, os.readlink(p))
                elif p.is_file():
                    self.file(target, p.read_bytes())

    def finish(self) -> bytes:
        # parents first: every path's ancestors exist as directories
        for path in list(self.entries):
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                parent = "/" + "/".join(parts[:i])
                self.entries.setdefault(parent, ("dir", 0o755, 0, 0, None))
        for path in sorted(self.entries):
            kind, mode, uid, gid, data = self.entries[path]
            if kind == "dir":
                self.tar.addfile(self._info(path, tarfile.DIRTYPE, mode, uid, gid))
            elif kind == "sym":
                ti = self._info(path, tarfile.SYMTYPE, mode, uid, gid)
                ti.linkname = data
                self.tar.addfile(ti)
            else:
                ti = self._info(path, tarfile.REGTYPE, mode, uid, gid)
                ti.size = len(data)
                self.tar.addfile(ti, io.BytesIO(data))
        self.tar.close()
        return self.buf.getvalue()


def blob(out: tarfile.TarFile, data: bytes, seen: set) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    if digest not in seen:
        seen.add(digest)
        ti = tarfile.TarInfo(f"blobs/sha256/{digest}")
        ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
        out.addfile(ti, io.BytesIO(data))
    return f"sha256:{digest}", len(data)


# Layers already compressed (images sharing layers are written without compressing twice).
_GZIPPED: dict[str, bytes] = {}


def write_oci(path: Path, name: str, layers: list[bytes], config: dict) -> str:
    """Writes an OCI image-layout tar; returns the manifest digest."""
    with open(path, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as out:
        seen: set = set()
        diff_ids, layer_descs = [], []
        for raw in layers:
            diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
            gz = _GZIPPED.get(diff_id) or _GZIPPED.setdefault(diff_id, gzip.compress(raw, mtime=0))
            diff_ids.append(diff_id)
            d, n = blob(out, gz, seen)
            layer_descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
        config = dict(config, rootfs={"type": "layers", "diff_ids": diff_ids})
        cd, cn = blob(out, json.dumps(config, sort_keys=True).encode(), seen)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
            "layers": layer_descs,
        }
        md, mn = blob(out, json.dumps(manifest, sort_keys=True).encode(), seen)
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": md,
                "size": mn,
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1],
                },
                "platform": {"architecture": "amd64", "os": "linux"},
            }],
        }
        for fname, data in (("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
                            ("index.json", json.dumps(index, sort_keys=True).encode())):
            ti = tarfile.TarInfo(fname)
            ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
            out.addfile(ti, io.BytesIO(data))
    return md


def base_layer() -> Layer:
    """distroless/cc: libraries, users, certificates, time zones, /tmp."""
    layer = Layer()
    for lib in LIBS:
        real = Path(lib).resolve()
        layer.file(lib.replace("/lib/", "/usr/lib/", 1) if lib.startswith("/lib/") else lib,
                   real.read_bytes(), 0o755)
    # merged /usr as in Debian 12 and distroless
    layer.symlink("/lib", "usr/lib")
    layer.file("/etc/passwd", PASSWD.encode())
    layer.file("/etc/group", GROUP.encode())
    layer.file("/etc/nsswitch.conf", NSSWITCH.encode())
    layer.file("/etc/os-release", OS_RELEASE.encode())
    layer.file("/etc/ssl/certs/ca-certificates.crt", Path("/etc/ssl/certs/ca-certificates.crt").read_bytes())
    layer.tree(Path("/usr/share/zoneinfo"), "/usr/share/zoneinfo")
    layer.dir("/tmp", 0o1777)
    layer.dir("/home/nonroot", 0o700, NONROOT, NONROOT)
    layer.dir("/root", 0o700)
    return layer


def server_properties() -> bytes:
    """The Dockerfile's sed over config/server.properties."""
    text = (REPO / "config" / "server.properties").read_text()
    text, n1 = re.subn(r"(?m)^listeners=.*$", "listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093", text)
    text, n2 = re.subn(r"(?m)^log\.dirs=.*$", "log.dirs=/var/lib/runnel/data/kafka-log", text)
    if n1 != 1 or n2 != 1:
        sys.exit("build.py: config/server.properties has no single listeners= / log.dirs= line to rewrite")
    return text.encode()


def runnel_layer(bin_dir: Path, strip: bool) -> Layer:
    layer = Layer()
    for name in ("runnel-broker", "runnel-operator"):
        src = bin_dir / name
        if not src.is_file():
            sys.exit(f"build.py: {src} not found (cargo build --release -p runnel-broker -p runnel-operator)")
        data = src.read_bytes()
        if strip and shutil.which("strip"):
            with tempfile.TemporaryDirectory() as td:
                tmp = Path(td) / name
                tmp.write_bytes(data)
                # as the Dockerfile's CARGO_PROFILE_RELEASE_DEBUG=0: symbols stay
                subprocess.run(["strip", "--strip-debug", str(tmp)], check=True)
                data = tmp.read_bytes()
        layer.file(f"/usr/local/bin/{name}", data, 0o755)
    layer.file("/etc/runnel/server.properties", server_properties())
    layer.dir("/var/lib/runnel", 0o755, NONROOT, NONROOT)
    layer.dir("/var/lib/runnel/data", 0o755, NONROOT, NONROOT)
    return layer


def image_config(version: str) -> dict:
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "User": f"{NONROOT}:{NONROOT}",
            "WorkingDir": "/var/lib/runnel",
            "Cmd": ["/usr/local/bin/runnel-broker", "/etc/runnel/server.properties"],
            "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            ],
            "ExposedPorts": {"9092/tcp": {}, "9093/tcp": {}, "8080/tcp": {}},
            "Labels": {
                "org.opencontainers.image.title": "runnel",
                "org.opencontainers.image.description": "Runnel: a Kafka-compatible broker (runnel-broker) and its Kubernetes operator (runnel-operator)",
                "org.opencontainers.image.version": version,
                "org.opencontainers.image.licenses": "Apache-2.0",
            },
        },
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "e2e/image/build.py (distroless/cc files)"},
                    {"created": "1970-01-01T00:00:00Z", "created_by": "e2e/image/build.py (runnel)"}],
    }


def pause_image(out: Path) -> None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        sys.exit("build.py: a C compiler is needed for the pause image")
    with tempfile.TemporaryDirectory() as td:
        src, binp = Path(td) / "pause.c", Path(td) / "pause"
        src.write_text(PAUSE_C)
        subprocess.run([cc, "-static", "-Os", "-s", "-o", str(binp), str(src)], check=True)
        layer = Layer()
        layer.file("/pause", binp.read_bytes(), 0o755)
        cfg = {
            "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
            "config": {"User": "65535:65535", "Entrypoint": ["/pause"]},
        }
        write_oci(out, PAUSE_NAME, [layer.finish()], cfg)


def ldd_closure(binary: Path) -> list[Path]:
    """The shared libraries `ldd` lists for a binary (its loader included)."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if m:
            libs.append(Path(m.group(1)))
    return libs


def tools_image(out: Path, name: str, tools: dict[str, Path], cfg: dict, busybox: bool) -> None:
    """An image of host binaries with their shared libraries (and optionally a
    busybox shell), for the e2e's helper pods: nothing is pulled."""
    layer = base_layer()
    for dst, src in tools.items():
        layer.file(dst, src.read_bytes(), 0o755)
        for lib in ldd_closure(src):
            real = lib.resolve()
            path = str(lib)
            if path.startswith("/lib/"):
                path = "/usr" + path
            layer.file(path, real.read_bytes(), 0o755)
    if busybox:
        bb = Path("/bin/busybox")
        if not bb.is_file():
            sys.exit("build.py: /bin/busybox missing (apt-get install busybox-static)")
        layer.file("/bin/busybox", bb.read_bytes(), 0o755)
        applets = subprocess.run([str(bb), "--list"], capture_output=True, text=True, check=True).stdout.split()
        for a in applets:
            if f"/bin/{a}" not in layer.entries and f"/usr/bin/{a}" not in layer.entries:
                layer.symlink(f"/bin/{a}", "busybox")
    base = {"architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z"}
    write_oci(out, name, [layer.finish()], dict(base, config=cfg))


def connect_image(out: Path, name: str, kafka_libs: Path, plugins: dict[str, Path],
                  bare: tuple[Path, str] | None = None, extra_libs: list[Path] = ()) -> str:
    """The Kafka Connect worker image: distroless/cc files, Debian's Java 17 runtime (the
    host's /usr/lib/jvm, symlinks into /etc resolved, with the libraries `ldd` lists),
    busybox as /bin/sh (the worker start adds the pod IP to its properties), Apache
    Kafka's jars under /opt/kafka/libs (with `extra_libs`: MirrorMaker 2's connect-mirror
    jars, which Apache Kafka's distribution also has in libs/) and each plugin under
    /opt/kafka/plugins/<name> (a layer of its own). With `bare` (path, name), also the
    same image without the plugin layer (its other layers are shared)."""
    if not (JRE_HOME / "bin" / "java").is_file():
        sys.exit(f"build.py: {JRE_HOME}/bin/java missing (apt-get install openjdk-17-jre-headless)")
    jars = sorted(kafka_libs.glob("*.jar")) + list(extra_libs)
    if not any(j.name.startswith("connect-runtime-") for j in jars):
        sys.exit(f"build.py: no connect-runtime jar in {kafka_libs} (scripts/install-test-deps.sh)")
    layer = base_layer()
    jre = str(JRE_HOME)
    for root, dirs, files in os.walk(JRE_HOME):
        rel = os.path.relpath(root, JRE_HOME)
        dirs[:] = sorted(d for d in dirs if os.path.normpath(os.path.join(rel, d)) not in JRE_SKIP)
        base = jre if rel == "." else f"{jre}/{rel}"
        layer.dir(base)
        for fname in sorted(dirs + files):
            rp = os.path.normpath(os.path.join(rel, fname))
            if rp in JRE_SKIP:
                continue
            p = Path(root) / fname
            if p.is_symlink() and os.readlink(p).startswith("/"):
                real = p.resolve()  # into /etc/java-17-openjdk or /etc/ssl: copy the content
                if real.is_file():
                    layer.file(f"{base}/{fname}", real.read_bytes(), 0o644)
            elif p.is_symlink():
                layer.symlink(f"{base}/{fname}", os.readlink(p))
            elif p.is_file():
                layer.file(f"{base}/{fname}", p.read_bytes(), p.stat().st_mode & 0o777)
    for rel in JRE_NATIVE:
        binp = JRE_HOME / rel
        if not binp.exists():
            continue
        for lib in ldd_closure(binp):
            path = str(lib)
            if path.startswith(jre):
                continue
            if path.startswith("/lib/"):
                path = "/usr" + path
            layer.file(path, lib.resolve().read_bytes(), 0o755)
    layer.symlink("/usr/bin/java", f"{jre}/bin/java")
    # A UTF-8 locale (LANG below): the JVM encodes file names in its locale's charset, and
    # plugin files with non-ASCII names need UTF-8.
    if Path("/usr/lib/locale/C.utf8").is_dir():
        layer.tree(Path("/usr/lib/locale/C.utf8"), "/usr/lib/locale/C.utf8")
    bb = Path("/bin/busybox")
    if not bb.is_file():
        sys.exit("build.py: /bin/busybox missing (apt-get install busybox-static)")
    layer.file("/bin/busybox", bb.read_bytes(), 0o755)
    applets = subprocess.run([str(bb), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if f"/bin/{a}" not in layer.entries and f"/usr/bin/{a}" not in layer.entries:
            layer.symlink(f"/bin/{a}", "busybox")
    kafka = Layer()
    for j in jars:
        kafka.file(f"/opt/kafka/libs/{j.name}", j.read_bytes())
    plugin_layer = Layer()
    for pname, src in sorted(plugins.items()):
        plugin_layer.file(f"/opt/kafka/plugins/{pname}/{src.name}", src.read_bytes())
    cfg = {
        "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": {
            "User": f"{NONROOT}:{NONROOT}",
            "WorkingDir": "/tmp",
            "Env": [f"PATH={jre}/bin:/usr/local/bin:/usr/bin:/bin", f"JAVA_HOME={jre}", "LANG=C.UTF-8"],
            "Cmd": ["/bin/sh", "-c", "exec java -cp '/opt/kafka/libs/*' org.apache.kafka.connect.cli.ConnectDistributed /etc/connect/worker.properties"],
            "ExposedPorts": {"8083/tcp": {}},
            "Labels": {"org.opencontainers.image.title": "runnel-connect",
                       "org.opencontainers.image.description": "Apache Kafka Connect 4.1.1 (distributed mode) with Debian's Java 17 and bundled plugins"},
        },
    }
    base_layers = [layer.finish(), kafka.finish()]
    if bare:
        bare_cfg = json.loads(json.dumps(cfg))
        bare_cfg["config"]["Labels"]["org.opencontainers.image.description"] = \
            "Apache Kafka Connect 4.1.1 (distributed mode) with Debian's Java 17, no plugins"
        write_oci(bare[0], bare[1], base_layers, bare_cfg)
    return write_oci(out, name, base_layers + [plugin_layer.finish()], cfg)


def connect_file_jar() -> Path:
    cache = Path(os.environ.get("RUNNEL_CACHE", Path.home() / ".cache" / "runnel"))
    for c in (cache / "connect-plugins" / "connect-file" / "connect-file-4.1.1.jar",
              Path.home() / ".m2/repository/org/apache/kafka/connect-file/4.1.1/connect-file-4.1.1.jar"):
        if c.is_file():
            return c
    sys.exit("build.py: connect-file-4.1.1.jar not found (mvn dependency:get -Dartifact=org.apache.kafka:connect-file:4.1.1)")


def connect_mirror_jars() -> list[Path]:
    """MirrorMaker 2's connectors (MirrorSourceConnector, ...): not dependencies of
    connect-runtime, so scripts/install-test-deps.sh fetches them on their own."""
    cache = Path(os.environ.get("RUNNEL_CACHE", Path.home() / ".cache" / "runnel"))
    jars = []
    for a in ("connect-mirror", "connect-mirror-client"):
        for c in (cache / "connect-mirror-4.1.1" / f"{a}-4.1.1.jar",
                  Path.home() / f".m2/repository/org/apache/kafka/{a}/4.1.1/{a}-4.1.1.jar"):
            if c.is_file():
                jars.append(c)
                break
        else:
            sys.exit(f"build.py: {a}-4.1.1.jar not found (scripts/install-test-deps.sh)")
    return jars


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", type=Path, default=REPO / "target" / "release")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tag", default=None, help="image tag (default: the workspace version)")
    ap.add_argument("--no-strip", action="store_true", help="keep DWARF debug info in the binaries")
    ap.add_argument("--client", action="store_true", help="also client.oci.tar (kcat + busybox) for e2e pods")
    ap.add_argument("--coredns", type=Path, help="also coredns.oci.tar from this CoreDNS binary")
    ap.add_argument("--local-path", type=Path, help="also local-path.oci.tar from this local-path-provisioner")
    ap.add_argument("--next-tag", default=None,
                    help="also runnel-next.oci.tar: the same layers as a distinct image of this version "
                         "tag, standing for a newer release (the e2e's image-change roll)")
    ap.add_argument("--connect", action="store_true",
                    help="also connect.oci.tar: Kafka Connect 4.1.1 workers (the operator's default Connect image)")
    ap.add_argument("--kafka-libs", type=Path,
                    default=Path(os.environ.get("KAFKA_LIBS", Path.home() / ".cache/runnel/kafka-4.1.1/libs")))
    ap.add_argument("--connect-only", action="store_true", help="build only connect.oci.tar")
    a = ap.parse_args()
    if a.connect_only:
        a.out.mkdir(parents=True, exist_ok=True)
        d = connect_image(a.out / "connect.oci.tar", CONNECT_NAME, a.kafka_libs, {"connect-file": connect_file_jar()},
                          bare=(a.out / "connect-bare.oci.tar", CONNECT_BARE_NAME), extra_libs=connect_mirror_jars())
        print(json.dumps({"connect": CONNECT_NAME, "connect_bare": CONNECT_BARE_NAME, "connect_manifest": d,
                          "connect_archive": str(a.out / "connect.oci.tar")}))
        return
    version = cargo_version()
    name = f"{IMAGE_REPO}:{a.tag or version}"
    a.out.mkdir(parents=True, exist_ok=True)
    layers = [base_layer().finish(), runnel_layer(a.bin_dir, not a.no_strip).finish()]
    digest = write_oci(a.out / "runnel.oci.tar", name, layers, image_config(version))
    pause_image(a.out / "pause.oci.tar")
    extra = {}
    if a.next_tag:
        # Its own config (version label), so its own image id: kubelets report it by its tag.
        nxt = f"{IMAGE_REPO}:{a.next_tag}"
        write_oci(a.out / "runnel-next.oci.tar", nxt, layers, image_config(a.next_tag))
        extra["next"] = nxt
    if a.client:
        # a client pod for the e2e: kcat and a busybox shell
        kcat = shutil.which("kcat")
        if not kcat:
            sys.exit("build.py: kcat missing (apt-get install kcat)")
        tools_image(a.out / "client.oci.tar", CLIENT_NAME, {"/usr/bin/kcat": Path(kcat)},
                    {"User": f"{NONROOT}:{NONROOT}", "Cmd": ["/bin/sh"],
                     "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]}, busybox=True)
        extra["client"] = CLIENT_NAME
    if a.coredns:
        tools_image(a.out / "coredns.oci.tar", COREDNS_NAME, {"/coredns": a.coredns},
                    {"User": f"{NONROOT}:{NONROOT}", "Entrypoint": ["/coredns"]}, busybox=False)
        extra["coredns"] = COREDNS_NAME
    if a.local_path:
        tools_image(a.out / "local-path.oci.tar", LOCAL_PATH_NAME,
                    {"/usr/local/bin/local-path-provisioner": a.local_path},
                    {"User": f"{NONROOT}:{NONROOT}", "Entrypoint": ["/usr/local/bin/local-path-provisioner"]},
                    busybox=False)
        extra["local_path"] = LOCAL_PATH_NAME
    if a.connect:
        connect_image(a.out / "connect.oci.tar", CONNECT_NAME, a.kafka_libs, {"connect-file": connect_file_jar()},
                      bare=(a.out / "connect-bare.oci.tar", CONNECT_BARE_NAME), extra_libs=connect_mirror_jars())
        extra["connect"] = CONNECT_NAME
        extra["connect_bare"] = CONNECT_BARE_NAME
    print(json.dumps({"image": name, "manifest": digest, "archive": str(a.out / "runnel.oci.tar"),
                      "pause": PAUSE_NAME, "pause_archive": str(a.out / "pause.oci.tar"), **extra}))


if __name__ == "__main__":
    main()
