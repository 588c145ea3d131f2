"""Settings shared by the kubelet's modules."""
import os
from dataclasses import dataclass, field
from pathlib import Path

PROVISIONER = "runnel.dev/e2e-hostpath"
STORAGE_CLASS = "runnel-e2e"
MANAGED_BY_LABEL = "runnel.dev/e2e-kubelet"


@dataclass
class Config:
    node_name: str
    state_dir: Path
    bin_dirs: list            # directories searched for a command's basename
    hosts_file: Path          # rewritten in place with Service/pod names
    # Overridable so two e2e runs can share a machine (each with its own ports, too).
    bridge: str = os.environ.get("E2E_BRIDGE", "runnel-e2e0")
    subnet_prefix: str = os.environ.get("E2E_SUBNET", "10.201.0")   # /24; .1 is the host (bridge) address
    image_marker: str = "runnel"      # images containing this run as local processes
    sync_period: float = 0.5
    netns_prefix: str = os.environ.get("E2E_NETNS_PREFIX", "rne-")
    veth_prefix: str = os.environ.get("E2E_VETH_PREFIX", "rnv")
    extra: dict = field(default_factory=dict)

    @property
    def lock_path(self) -> str:
        """Held while this kubelet runs: it owns the bridge and the subnet."""
        b = self.bridge
        return "/run/runnel-e2e-kubelet.lock" if b == "runnel-e2e0" else f"/run/runnel-e2e-kubelet-{b}.lock"

    @property
    def host_ip(self) -> str:
        return f"{self.subnet_prefix}.1"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pods_dir(self) -> Path:
        return self.state_dir / "pods"

    @property
    def volumes_dir(self) -> Path:
        return self.state_dir / "volumes"
