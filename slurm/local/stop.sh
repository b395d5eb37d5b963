#!/usr/bin/env bash
# Stop the daemons slurm/local/start.sh started (by their pid files; nothing else). Safe to run twice.
set -uo pipefail
trap '' PIPE
STATE_DIR=${S1_SLURM_DIR:-/var/lib/s1-slurm}

stop() {  # pid file, program name
  local pidfile=$1 prog=$2 pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile" 2>/dev/null)
  if [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == "$prog" ]]; then
    kill "$pid"
    for _ in $(seq 40); do [[ -d /proc/$pid ]] || break; sleep 0.25; done
    [[ -d /proc/$pid ]] && kill -9 "$pid"
    echo "[slurm/local] stopped $prog (pid $pid)"
  fi
  rm -f "$pidfile"
}

stop "$STATE_DIR/slurmd.pid" slurmd
stop "$STATE_DIR/slurmctld.pid" slurmctld
stop "$STATE_DIR/munged.pid" munged
exit 0
