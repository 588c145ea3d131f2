"""python3 -m runnel_kubelet --kubeconfig K --state-dir D --bin-dir DIR[:DIR] [--hosts-file F]"""
import argparse
import fcntl
import logging
import os
import signal
import sys
from pathlib import Path

from .api import Api
from .config import Config
from .kubelet import Kubelet, remove_mountpoints


def main():
    ap = argparse.ArgumentParser(prog="runnel-e2e-kubelet", description=__doc__)
    ap.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    ap.add_argument("--state-dir", type=Path, default=os.environ.get("E2E_STATE_DIR"),
                    required="E2E_STATE_DIR" not in os.environ)
    ap.add_argument("--bin-dir", default=os.environ.get("RUNNEL_BIN_DIR", ""),
                    help="colon-separated directories holding runnel-broker, runnel-operator, ...")
    ap.add_argument("--hosts-file", type=Path, default=Path("/etc/hosts"),
                    help="rewritten in place with Service and pod names (bind-mount it over /etc/hosts)")
    ap.add_argument("--node-name", default="runnel-e2e-node")
    ap.add_argument("--cleanup", action="store_true",
                    help="only clean up what a killed run left (pod processes, bridge) and exit")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    if not a.cleanup and not a.kubeconfig:
        sys.exit("runnel-e2e-kubelet: set KUBECONFIG or --kubeconfig")
    if os.geteuid() != 0:
        sys.exit("runnel-e2e-kubelet: must run as root (network and mount namespaces)")
    bridge = Config.bridge
    lock_path = Config.lock_path.fget(Config)
    lock = open(lock_path, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"runnel-e2e-kubelet: another e2e kubelet holds {lock_path} "
                 f"(it owns the bridge {bridge} and {Config.subnet_prefix}.0/24); stop it first, "
                 "or set E2E_BRIDGE, E2E_SUBNET, E2E_NETNS_PREFIX, E2E_VETH_PREFIX and the E2E_*_PORT variables")
    if a.cleanup:
        from .netns import Network
        from .pod_worker import kill_leftovers
        cfg = Config(node_name=a.node_name, state_dir=a.state_dir.resolve(), bin_dirs=[], hosts_file=a.hosts_file)
        kill_leftovers(cfg.pods_dir, logging.getLogger("cleanup"))
        Network(cfg).cleanup_leftovers()
        remove_mountpoints(cfg.state_dir / "created-mountpoints", lock_path)
        return
    bin_dirs = [d for d in a.bin_dir.split(":") if d]
    if not bin_dirs:
        sys.exit("runnel-e2e-kubelet: set RUNNEL_BIN_DIR or --bin-dir")
    cfg = Config(node_name=a.node_name, state_dir=a.state_dir.resolve(), bin_dirs=bin_dirs,
                 hosts_file=a.hosts_file)
    k = Kubelet(cfg, Api(a.kubeconfig, a.node_name))

    def stop(signum, _frame):
        logging.getLogger("kubelet").info("signal %s: stopping", signum)
        k.stop_event.set()
        k.poke()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    k.run()


if __name__ == "__main__":
    main()
