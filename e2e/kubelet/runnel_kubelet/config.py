"""Settings shared by the kubelet's modules."""
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
    bridge: str = "runnel-e2e0"
    subnet_prefix: str = "10.201.0"   # /24; .1 is the host (bridge) address
    image_marker: str = "runnel"      # images containing this run as local processes
    sync_period: float = 0.5
    netns_prefix: str = "rne-"
    veth_prefix: str = "rnv"
    extra: dict = field(default_factory=dict)

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
