#!/usr/bin/env bash
# Start a real one-node Slurm on this machine (tests, CI, trying `make pipeline` on a laptop). Idempotent.
#   bash slurm/local/start.sh     installs slurmctld slurmd slurm-client munge (Debian) if missing, writes
#                                 /etc/slurm/slurm.conf for this machine, starts munged, slurmctld, slurmd,
#                                 and waits until the node is idle
#   bash slurm/local/stop.sh      stops only the daemons this script started
# Needs root. State, logs and pid files live in $S1_SLURM_DIR (default /var/lib/s1-slurm).
set -euo pipefail
trap '' PIPE

HERE=$(cd "$(dirname "$0")" && pwd)
STATE_DIR=${S1_SLURM_DIR:-/var/lib/s1-slurm}
CONF=/etc/slurm/slurm.conf
MARKER="# written by s1 slurm/local/start.sh"
WAIT_S=${S1_SLURM_WAIT_S:-30}

log() { echo "[slurm/local] $*"; }
die() { echo "[slurm/local] error: $*" >&2; exit 1; }

# pid in $1 is alive and runs the program $2 (pid files can outlive a reboot or a container)
alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) && [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]]
}

node_state() { sinfo -h -N -n localhost -o %T 2>/dev/null | head -n 1; }

wait_idle() {
  local state=""
  for _ in $(seq $((WAIT_S * 2))); do
    state=$(node_state)
    case $state in
      idle|mixed|allocated|completing) log "node localhost is $state; Slurm is ready (sinfo, sbatch, squeue)"; return 0 ;;
      down*|drain*|drained*|fail*) scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  die "node localhost did not become idle in ${WAIT_S}s (state: '${state:-none}'); see $STATE_DIR/slurmctld.log and slurmd.log"
}

# Already up (ours, or a cluster this machine belongs to): nothing to start.
if command -v scontrol >/dev/null && scontrol ping 2>/dev/null | grep -q UP; then
  if [[ -f $CONF ]] && ! grep -qF "$MARKER" "$CONF"; then
    log "a Slurm not started by this script is running ($CONF); using it as is"
    exit 0
  fi
  if alive "$STATE_DIR/slurmctld.pid" slurmctld && alive "$STATE_DIR/slurmd.pid" slurmd; then
    wait_idle
    exit 0
  fi
fi

[[ $(id -u) == 0 ]] || die "needs root (installs packages and starts daemons); run: sudo bash $0"

missing=()
for prog in slurmctld slurmd sbatch munged; do command -v "$prog" >/dev/null || missing+=("$prog"); done
if (( ${#missing[@]} )); then
  log "installing slurmctld slurmd slurm-client munge (missing: ${missing[*]})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

if [[ -f $CONF ]] && ! grep -qF "$MARKER" "$CONF"; then
  die "$CONF exists and was not written by this script; refusing to overwrite it (move it aside or use that cluster)"
fi

mkdir -p "$STATE_DIR/ctld" "$STATE_DIR/spool" /etc/slurm
# Node topology from slurmd -C, as plain CPUs so that each CPU is schedulable on its own.
cpus=$(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' | head -n 1)
mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n 1)
[[ -n $cpus && -n $mem ]] || die "could not read CPUs/RealMemory from 'slurmd -C'"
sed -e "s|@STATE_DIR@|$STATE_DIR|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEMORY_MB@|$((mem * 95 / 100))|g" \
    -e "s|@CTLD_PORT@|${S1_SLURMCTLD_PORT:-6817}|g" -e "s|@SLURMD_PORT@|${S1_SLURMD_PORT:-6818}|g" \
    "$HERE/slurm.conf.template" > "$CONF.tmp"
mv "$CONF.tmp" "$CONF"
log "wrote $CONF (CPUs=$cpus, RealMemory=$((mem * 95 / 100)) MB, state in $STATE_DIR)"

# munge runs as its own user: as root it refuses the package's key (owned by munge).
if ! (munge -n 2>/dev/null | unmunge >/dev/null 2>&1); then
  [[ -f /etc/munge/munge.key ]] || { mungekey --create >/dev/null 2>&1 || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; }
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  runuser -u munge -- /usr/sbin/munged --force
  for _ in $(seq 20); do (munge -n 2>/dev/null | unmunge >/dev/null 2>&1) && break; sleep 0.25; done
  cp /run/munge/munged.pid "$STATE_DIR/munged.pid"
  log "started munged (pid $(cat "$STATE_DIR/munged.pid"))"
fi

if ! alive "$STATE_DIR/slurmctld.pid" slurmctld; then
  slurmctld
  for _ in $(seq 20); do alive "$STATE_DIR/slurmctld.pid" slurmctld && break; sleep 0.25; done
  log "started slurmctld (pid $(cat "$STATE_DIR/slurmctld.pid" 2>/dev/null || echo '?'))"
fi
if ! alive "$STATE_DIR/slurmd.pid" slurmd; then
  slurmd -N localhost
  for _ in $(seq 20); do alive "$STATE_DIR/slurmd.pid" slurmd && break; sleep 0.25; done
  log "started slurmd (pid $(cat "$STATE_DIR/slurmd.pid" 2>/dev/null || echo '?'))"
fi
wait_idle
