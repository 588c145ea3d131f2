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
    for m in sorted(spec["mounts"], key=lambda m: m["dst"].count("/")):
        src, dst = m["src"], m["dst"]
        if os.path.isdir(src):
            os.makedirs(dst, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if not os.path.exists(dst):
                open(dst, "a").close()
        subprocess.run(["mount", "--bind", src, dst], check=True)
        if m.get("readOnly"):
            subprocess.run(["mount", "-o", "remount,bind,ro", dst], check=True)
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
