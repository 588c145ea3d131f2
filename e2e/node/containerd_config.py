#!/usr/bin/env python3
"""Rewrites `containerd config default` (stdin) for one e2e node.

    containerd config default | containerd_config.py NODE_DIR PAUSE_IMAGE > config.toml

Every change is a fixed line of containerd 1.6's default config; a line not
found is an error, so a containerd whose defaults changed is noticed.
"""

import re
import sys

node_dir, pause = sys.argv[1], sys.argv[2]
text = sys.stdin.read()


def sub(pattern: str, repl: str) -> None:
    global text
    text, n = re.subn(pattern, repl, text, count=1, flags=re.M)
    if n != 1:
        sys.exit(f"containerd_config.py: no line matches {pattern!r} in containerd's default config")


sub(r'^root = ".*"$', f'root = "{node_dir}/containerd/root"')
sub(r'^state = ".*"$', f'state = "{node_dir}/containerd/state"')
sub(r'^(\[grpc\]\n(?:.*\n)*?\s*address = )".*"$', rf'\1"{node_dir}/run/containerd.sock"')
sub(r'^(\s*)sandbox_image = ".*"$', rf'\1sandbox_image = "{pause}"')
sub(r'^(\s*)bin_dir = "/opt/cni/bin"$', r'\1bin_dir = "/usr/lib/cni"')
sub(r'^(\s*)conf_dir = "/etc/cni/net.d"$', rf'\1conf_dir = "{node_dir}/cni"')
# this host may not lower oom_score_adj below containerd's own
sub(r'^(\s*)restrict_oom_score_adj = false$', r'\1restrict_oom_score_adj = true')
sub(r'^(\s*)disable_apparmor = false$', r'\1disable_apparmor = true')
# runc's state apart from the other nodes' containerds
sub(r'^(\s*\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.runc\.options\]\n(?:.*\n)*?\s*)Root = ""$',
    rf'\1Root = "{node_dir}/run/runc"')
sys.stdout.write(text)
