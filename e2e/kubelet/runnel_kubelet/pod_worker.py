"""One thread per pod bound to this node: sets up its network namespace and
volumes, runs its containers as local processes, restarts them per
restartPolicy, runs probes, reports status, and carries out deletion
(SIGTERM, grace period, SIGKILL, then delete the pod object with grace 0)."""
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import urllib3

from .api import ApiError
from .envs import ConfigError, expand, resolve_env
from .probes import ProbeState, run_probe
from .volumes import NotReady, VolumeManager

LAUNCH = str(Path(__file__).with_name("launch.py"))
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def now_iso(t=None):
    return datetime.fromtimestamp(t or time.time(), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def proc_start_time(pid):
    """Field 22 of /proc/PID/stat: identifies a process across pid reuse."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def kill_leftovers(pods_dir: Path, log):
    """Kill container processes recorded by a previous (killed) kubelet run."""
    for pidfile in pods_dir.glob("*/*.pid"):
        try:
            pid, start = pidfile.read_text().split()
            if proc_start_time(int(pid)) == start:
                os.killpg(int(pid), signal.SIGKILL)
                log.info("killed leftover container process %s (%s)", pid, pidfile)
        except (ValueError, OSError):
            pass
        pidfile.unlink(missing_ok=True)


class Container:
    def __init__(self, spec, pod_key, logs_dir, init=False):
        self.spec = spec
        self.name = spec["name"]
        self.init = init
        self.proc = None
        self.restart_count = 0
        self.state = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state = {}
        self.next_start = 0.0
        self.backoff = 1.0
        self.started_at = None
        self.done = False            # init container finished / no more restarts
        self.readiness = None
        self.liveness = None
        self.log_path = logs_dir / f"{pod_key}_{self.name}.log"

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def ready(self):
        if not self.running:
            return False
        return True if self.readiness is None else bool(self.readiness.result)

    def status(self):
        s = {"name": self.name, "image": self.spec.get("image", ""), "imageID": "",
             "ready": self.ready(), "restartCount": self.restart_count,
             "started": self.running, "state": self.state, "lastState": self.last_state}
        if self.proc is not None:
            s["containerID"] = f"runnel-e2e://{self.proc.pid}"
        return s


class PodWorker(threading.Thread):
    def __init__(self, kubelet, pod):
        md = pod["metadata"]
        super().__init__(name=f"pod-{md['namespace']}/{md['name']}", daemon=True)
        self.k = kubelet
        self.cfg = kubelet.cfg
        self.api = kubelet.api
        self.log = logging.getLogger(f"pod {md['namespace']}/{md['name']}")
        self.pod = pod
        self.uid = md["uid"]
        self.key = f"{md['namespace']}_{md['name']}"
        self.ip = None
        self.gone = False           # the pod object vanished (force delete)
        self.shutdown = False       # the kubelet is exiting
        self.fatal = None           # (reason, message): the pod cannot run here
        self.waiting = None         # (reason, message): volumes/config not ready
        self.start_time = time.time()
        self.published = None
        self.cond_times = {}
        self.vols = VolumeManager(self.cfg, self.api)
        logs = self.cfg.logs_dir
        self.inits = [Container(c, self.key, logs, init=True) for c in pod["spec"].get("initContainers") or []]
        self.containers = [Container(c, self.key, logs) for c in pod["spec"]["containers"]]

    def update(self, pod):
        self.pod = pod

    # ---- main loop ------------------------------------------------------------
    def run(self):
        try:
            self._run()
        except Exception:
            self.log.exception("pod worker crashed")
        finally:
            # force-deleted: kill at once; kubelet exiting: a short grace
            self._kill_all(grace=0 if self.gone else 3 if self.shutdown else None, quick=True)
            if self.ip:
                self.k.net.delete_pod_netns(self.uid)
                self.k.net.release_ip(self.ip)
            self.k.forget(self.uid)

    def _run(self):
        bad = [c["image"] for c in self.pod["spec"]["containers"] + (self.pod["spec"].get("initContainers") or [])
               if self.cfg.image_marker not in (c.get("image") or "")]
        if bad:
            self.fatal = ("UnsupportedImage",
                          f"the e2e kubelet runs only images containing {self.cfg.image_marker!r} "
                          f"(as local processes); not {', '.join(bad)}")
            self.log.warning("%s", self.fatal[1])
            self.api.event(self.pod, "Warning", self.fatal[0], self.fatal[1])
        else:
            self.ip = self.k.net.allocate_ip()
            self.k.net.create_pod_netns(self.uid, self.ip)
            self.k.wait_synced()   # the pod's DNS name is in the hosts file before its process starts
        while True:
            if self.gone or self.shutdown:
                return
            try:
                if self.pod["metadata"].get("deletionTimestamp"):
                    self._terminate()
                    return
                if not self.fatal and not all(c.done for c in self.containers):
                    self._sync()
                self._publish()
            except (OSError, urllib3.exceptions.HTTPError) as e:   # the API server restarting
                self.log.warning("sync failed, retrying: %s", e)      # keep the containers running
            except Exception:
                self.log.exception("sync failed; retrying")
            time.sleep(self.cfg.sync_period)

    def _terminate(self):
        grace = self.pod["metadata"].get("deletionGracePeriodSeconds")
        if grace is None:
            grace = self.pod["spec"].get("terminationGracePeriodSeconds", 30)
        self.log.info("deleting: SIGTERM, grace %ss", grace)
        for c in self.inits + self.containers:
            if c.running:
                self.api.event(self.pod, "Normal", "Killing", f"Stopping container {c.name}")
        self._kill_all(grace=grace)
        self._publish(final=True)
        self.api.delete_pod_now(self.pod)
        self.log.info("deleted")

    def _kill_all(self, grace=None, quick=False):
        procs = [c for c in self.inits + self.containers if c.running]
        if not procs:
            return
        if grace is None:
            grace = 5 if quick else self.pod["spec"].get("terminationGracePeriodSeconds", 30)
        for c in procs:
            self._signal(c, signal.SIGTERM)
        deadline = time.time() + grace
        while time.time() < deadline and any(c.running for c in procs):
            time.sleep(0.1)
        for c in procs:
            if c.running:
                self.log.info("container %s: SIGKILL after %ss grace", c.name, grace)
                self._signal(c, signal.SIGKILL)
            try:
                c.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self._record_exit(c)

    @staticmethod
    def _signal(c, sig):
        try:
            os.killpg(c.proc.pid, sig)
        except ProcessLookupError:
            pass

    # ---- containers -----------------------------------------------------------
    def _sync(self):
        try:
            self.paths = self.vols.setup(self.pod, self.ip)
            self.waiting = None
        except (NotReady, ConfigError) as e:
            if not self.waiting or self.waiting[1] != str(e):
                self.api.event(self.pod, "Warning", "FailedMount", str(e))
            self.waiting = ("ContainerCreating", str(e))
            return
        except ApiError as e:
            self.waiting = ("ContainerCreating", f"API error: {e.status} {e.reason}")
            return
        for c in self.inits:
            if not c.done:
                self._drive(c)
                return
        for c in self.containers:
            self._drive(c)
        now = time.time()
        for c in self.containers:
            self._probe(c, now)

    def _drive(self, c):
        policy = self.pod["spec"].get("restartPolicy", "Always")
        if c.proc is not None and not c.running:
            code = self._record_exit(c)
            if c.init:
                restart = code != 0 and policy != "Never"
                c.done = code == 0
                if code != 0 and policy == "Never":
                    self.fatal = ("InitContainerFailed", f"init container {c.name} exited with {code}")
            else:
                restart = policy == "Always" or (policy == "OnFailure" and code != 0)
            if restart:
                ran = time.time() - (c.started_at or 0)
                c.backoff = 1.0 if ran > 30 else min(c.backoff * 2, 10.0)
                c.next_start = time.time() + c.backoff
                self.api.event(self.pod, "Warning", "BackOff", f"Back-off restarting failed container {c.name}")
                c.state = {"waiting": {"reason": "CrashLoopBackOff",
                                       "message": f"back-off {c.backoff:.0f}s restarting failed container={c.name}"}}
            elif not c.init:
                c.done = True
        if c.proc is None and not c.done and time.time() >= c.next_start:
            self._start(c)

    def _record_exit(self, c):
        if c.proc is None:
            return None
        code = c.proc.poll()
        if code is None:
            return None
        if code < 0:        # killed by a signal: report as a shell would
            code = 128 - code
        term = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                "startedAt": now_iso(c.started_at), "finishedAt": now_iso()}
        self.log.info("container %s exited with %s", c.name, code)
        c.last_state = {"terminated": term}
        c.state = {"terminated": term}
        c.proc = None
        c.readiness = c.liveness = None
        return code

    def resolve_argv(self, argv):
        exe = argv[0]
        base = os.path.basename(exe)
        for d in self.cfg.bin_dirs:
            cand = os.path.join(d, base)
            if os.path.isfile(cand) and os.access(cand, os.X_OK):
                return [cand, *argv[1:]]
        found = (exe if os.path.isabs(exe) and os.access(exe, os.X_OK) else None) or shutil.which(base)
        if found:
            return [found, *argv[1:]]
        raise ConfigError(f"command {exe!r}: no {base!r} in RUNNEL_BIN_DIR ({':'.join(self.cfg.bin_dirs)}) or on PATH")

    def _start(self, c):
        spec, pod = c.spec, self.pod
        try:
            env = resolve_env(pod, spec, lambda kind, name: self.api.read_data(kind, pod["metadata"]["namespace"], name),
                              self.ip, self.cfg.host_ip)
            cmd = [expand(a, env) for a in (spec.get("command") or []) + (spec.get("args") or [])]
            if not spec.get("command"):
                raise ConfigError("container has no command: the e2e kubelet does not know the image's entrypoint")
            argv = self.resolve_argv(cmd)
            mounts = VolumeManager.mounts(spec, self.paths)
        except ConfigError as e:
            if (c.state.get("waiting") or {}).get("message") != str(e):
                self.api.event(self.pod, "Warning", "Failed", f"Error: {e}")
            c.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(e)}}
            c.next_start = time.time() + 2
            self.log.warning("container %s: %s", c.name, e)
            return
        hostname = pod["spec"].get("hostname") or pod["metadata"]["name"]
        api = self.cfg.host_ip     # ApiProxy: what in-cluster clients use
        full_env = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname,
                    "KUBERNETES_SERVICE_HOST": api, "KUBERNETES_SERVICE_PORT": "443",
                    "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": f"tcp://{api}:443",
                    "KUBERNETES_PORT_443_TCP": f"tcp://{api}:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
                    "KUBERNETES_PORT_443_TCP_ADDR": api, "KUBERNETES_PORT_443_TCP_PORT": "443", **env}
        pod_dir = self.vols.pod_dir(pod)
        pod_dir.mkdir(parents=True, exist_ok=True)
        spec_file = pod_dir / f"{c.name}.launch.json"
        spec_file.write_text(json.dumps({"argv": argv, "env": full_env, "cwd": spec.get("workingDir") or "/",
                                         "hostname": hostname[:63], "mounts": mounts,
                                         "created_log": str(self.cfg.state_dir / "created-mountpoints")}, indent=1))
        c.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(c.log_path, "ab") as logf:
            restarts = c.restart_count + (c.started_at is not None)
            logf.write(f"=== runnel-e2e-kubelet {now_iso()}: start {c.name} (restart {restarts}): "
                       f"{' '.join(argv)}\n".encode())
            logf.flush()
            c.proc = subprocess.Popen(
                ["nsenter", f"--net={self.k.net.netns_path(self.uid)}", "--",
                 "unshare", "--mount", "--uts", "--propagation", "private", "--",
                 sys.executable, LAUNCH, str(spec_file)],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        (pod_dir / f"{c.name}.pid").write_text(f"{c.proc.pid} {proc_start_time(c.proc.pid)}\n")
        if c.started_at is not None:
            c.restart_count += 1
        c.started_at = time.time()
        c.state = {"running": {"startedAt": now_iso(c.started_at)}}
        if spec.get("readinessProbe"):
            c.readiness = ProbeState(spec["readinessProbe"], c.started_at)
        if spec.get("livenessProbe"):
            c.liveness = ProbeState(spec["livenessProbe"], c.started_at)
        self.log.info("container %s started, pid %s: %s", c.name, c.proc.pid, " ".join(argv))
        self.api.event(self.pod, "Normal", "Started", f"Started container {c.name} (pid {c.proc.pid})")

    def _probe(self, c, now):
        if not c.running:
            return
        for kind, st in (("Readiness", c.readiness), ("Liveness", c.liveness)):
            if st is None or not st.due(now):
                continue
            ok, msg = run_probe(st.probe, c.spec, self.ip, c.proc.pid, self.resolve_argv)
            before = st.result
            st.record(ok, msg, time.time())
            if st.result != before:
                self.log.info("container %s: %s probe %s %s", c.name, kind.lower(),
                              "succeeded" if st.result else "failed:", "" if st.result else msg)
                if st.result is False and before is not None:
                    self.api.event(self.pod, "Warning", "Unhealthy", f"{kind} probe failed: {msg}")
            if kind == "Liveness" and st.result is False:
                self.log.warning("container %s: liveness probe failed, killing", c.name)
                self._signal(c, signal.SIGKILL)

    # ---- status ---------------------------------------------------------------
    def _cond(self, ctype, ok, reason=None, message=None):
        status = "True" if ok else "False"
        prev = self.cond_times.get(ctype)
        if prev is None or prev[0] != status:
            self.cond_times[ctype] = (status, now_iso())
        c = {"type": ctype, "status": status, "lastTransitionTime": self.cond_times[ctype][1],
             "lastProbeTime": None}
        if reason and not ok:
            c["reason"] = reason
        if message and not ok:
            c["message"] = message
        return c

    def phase(self):
        if self.fatal:
            return "Failed"
        cs = self.containers
        if any(c.running for c in cs):
            return "Running"
        if all(c.done for c in cs):
            codes = [(c.state.get("terminated") or {}).get("exitCode", 1) for c in cs]
            return "Succeeded" if all(x == 0 for x in codes) else "Failed"
        if any(c.started_at for c in cs):
            return "Running"     # between restarts
        return "Pending"

    def status(self):
        cs = self.containers
        ready = all(c.ready() for c in cs) and not self.fatal
        not_ready = [c.name for c in cs if not c.ready()]
        msg = f"containers with unready status: [{' '.join(not_ready)}]" if not_ready else None
        inits_done = all(c.done for c in self.inits)
        st = {
            "phase": self.phase(),
            "hostIP": self.cfg.host_ip, "hostIPs": [{"ip": self.cfg.host_ip}],
            "startTime": now_iso(self.start_time),
            "conditions": [
                self._cond("PodReadyToStartContainers", self.ip is not None),
                self._cond("Initialized", inits_done, "ContainersNotInitialized"),
                self._cond("ContainersReady", ready, "ContainersNotReady", msg),
                self._cond("Ready", ready, "ContainersNotReady", msg),
                self._cond("PodScheduled", True),
            ],
            "containerStatuses": [c.status() for c in cs],
        }
        if self.inits:
            st["initContainerStatuses"] = [c.status() for c in self.inits]
        if self.ip:
            st["podIP"] = self.ip
            st["podIPs"] = [{"ip": self.ip}]
        if self.fatal:
            st["reason"], st["message"] = self.fatal
            for s in st["containerStatuses"]:
                s["state"] = {"waiting": {"reason": self.fatal[0], "message": self.fatal[1]}}
        elif self.waiting:
            for s in st["containerStatuses"]:
                if "waiting" in s["state"]:     # never un-terminate a container (the API forbids it)
                    s["state"] = {"waiting": {"reason": self.waiting[0], "message": self.waiting[1]}}
        return st

    def _publish(self, final=False):
        st = self.status()
        if final:
            st["conditions"] = [c if c["type"] not in ("Ready", "ContainersReady") else
                                {**c, "status": "False", "reason": "PodTerminating"} for c in st["conditions"]]
        blob = json.dumps(st, sort_keys=True)
        if blob == self.published:
            return
        try:
            self.api.patch_pod_status(self.pod, st)
            self.published = blob
        except ApiError as e:
            if e.status in (404, 409):   # gone, or replaced by a new pod of the same name
                self.gone = True
            else:
                self.log.warning("status update failed: %s", e)
