"""The e2e storage provisioner: a default StorageClass and, for every pending
PVC, a PersistentVolume pre-bound to it (claimRef) whose hostPath is a
directory under STATE_DIR/volumes/. The real PV binder controller in
kube-controller-manager completes the binding. The directory belongs to the
claim, so data survives pod restarts and deletions; when the PVC is deleted
the PV is Released and (reclaimPolicy Delete) we remove it and its data."""
import logging
import shutil

from .api import ApiError

from .config import PROVISIONER, STORAGE_CLASS

log = logging.getLogger("storage")


class Provisioner:
    def __init__(self, cfg, api):
        self.cfg = cfg
        self.api = api

    def ensure_storage_class(self):
        body = {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS,
                         "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": PROVISIONER, "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
        }
        if self.api.create("/apis/storage.k8s.io/v1/storageclasses", body):
            log.info("created default StorageClass %s", STORAGE_CLASS)

    def sync(self, pvcs, pvs):
        by_name = {pv["metadata"]["name"]: pv for pv in pvs}
        for pvc in pvcs:
            md, spec = pvc["metadata"], pvc["spec"]
            if spec.get("volumeName") or md.get("deletionTimestamp"):
                continue
            if (pvc.get("status") or {}).get("phase") not in (None, "Pending"):
                continue
            name = f"pvc-{md['uid']}"
            if name in by_name:
                continue
            path = self.cfg.volumes_dir / name
            path.mkdir(parents=True, exist_ok=True)
            size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
            pv = {
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER},
                             "labels": {"runnel.dev/e2e-claim-namespace": md["namespace"]}},
                "spec": {
                    "capacity": {"storage": size},
                    "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Delete",
                    "storageClassName": spec.get("storageClassName") or "",
                    "volumeMode": spec.get("volumeMode") or "Filesystem",
                    "hostPath": {"path": str(path), "type": "Directory"},
                    "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                 "namespace": md["namespace"], "name": md["name"], "uid": md["uid"]},
                },
            }
            try:
                if self.api.create("/api/v1/persistentvolumes", pv):
                    log.info("provisioned %s for PVC %s/%s at %s", name, md["namespace"], md["name"], path)
            except ApiError as e:
                log.warning("creating PV %s: %s", name, e)
        for pv in pvs:
            md = pv["metadata"]
            if (md.get("annotations") or {}).get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
                continue
            if (pv.get("status") or {}).get("phase") in ("Released", "Failed") and \
                    pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
                shutil.rmtree(pv["spec"]["hostPath"]["path"], ignore_errors=True)
                try:
                    self.api.rest.delete(f"/api/v1/persistentvolumes/{md['name']}")
                    log.info("deleted released %s and its data", md["name"])
                except ApiError as e:
                    if e.status != 404:
                        log.warning("deleting PV %s: %s", md["name"], e.reason)
