#!/usr/bin/env bash
# Stop the control plane started by up.sh STATE_DIR (only the processes whose
# pids up.sh recorded, and only if they still are that program).
#   down.sh STATE_DIR [--only NAME] [--wipe]
#   --wipe also deletes STATE_DIR (data, certs, logs).
set -uo pipefail
STATE="${1:?usage: down.sh STATE_DIR [--only NAME] [--wipe]}"; shift
ONLY="" WIPE=0
while (($#)); do case $1 in --only) ONLY=$2; shift 2;; --wipe) WIPE=1; shift;; *) echo "down.sh: unknown arg $1" >&2; exit 2;; esac; done
[[ -d $STATE ]] || exit 0
stop() { # name
  local f="$STATE/run/$1.pid" pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null && grep -q "$1" "/proc/$pid/cmdline" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    echo "down.sh: stopped $1 (pid $pid)" >&2
  fi
  rm -f "$f"
}
for n in kube-controller-manager kube-apiserver etcd; do
  [[ -z $ONLY || $ONLY == "$n" ]] && stop "$n"
done
if ((WIPE)); then rm -rf "$STATE"; fi
exit 0
