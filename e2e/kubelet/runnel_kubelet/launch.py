"""Runs inside a fresh mount + UTS namespace (entered from the pod's network
namespace by the kubelet): bind-mount the pod's volumes at the container's
mountPaths, set the hostname, then exec the container's command.

Usage: python3 launch.py SPEC.json
SPEC: {"argv": [...], "env": {...}, "cwd": "/", "hostname": "...",
       "mounts": [{"src": "...", "dst": "...", "readOnly": false}]}
"""
import json
import os
import socket
import subprocess
import sys


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    created = []
    for m in sorted(spec["mounts"], key=lambda m: m["dst"].count("/")):
        src, dst = m["src"], m["dst"]
        parent = dst if os.path.isdir(src) else os.path.dirname(dst)
        missing = []
        p = parent
        while p not in ("/", "") and not os.path.exists(p):
            missing.append(p)
            p = os.path.dirname(p)
        os.makedirs(parent, exist_ok=True)
        created += reversed(missing)
        if not os.path.isdir(src) and not os.path.exists(dst):
            open(dst, "a").close()
            created.append(dst)
        subprocess.run(["mount", "--bind", src, dst], check=True)
        if m.get("readOnly"):
            subprocess.run(["mount", "-o", "remount,bind,ro", dst], check=True)
    if created and spec.get("created_log"):
        # the host paths made as mount points; the kubelet removes them (if
        # still empty) when it stops
        with open(spec["created_log"], "a") as f:
            f.writelines(c + "\n" for c in created)
    if spec.get("hostname"):
        socket.sethostname(spec["hostname"])
    os.chdir(spec.get("cwd") or "/")
    argv = spec["argv"]
    os.execve(argv[0], argv, spec["env"])


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the kubelet reads this from the container log
        print(f"runnel-e2e-kubelet launch failed: {e}", file=sys.stderr, flush=True)
        sys.exit(128)
