#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests in tests/slurm.
#
#   tests/slurm/cluster.sh start    install (if missing), configure, start, wait for the node to be idle
#   tests/slurm/cluster.sh stop     cancel jobs, stop the daemons started by `start`, clean up state
#   tests/slurm/cluster.sh status   exit 0 when the cluster started by `start` is up, 1 otherwise
#
# Exit codes: 0 ok; 1 error; 2 usage; 3 this machine cannot run the cluster (not root, no apt-get, install
# failed). On code 3 the last line on stderr is a one-line reason starting with "cannot run SLURM here:".
#
# The cluster: node <hostname -s> (NodeAddr=127.0.0.1) with CPUs=$(nproc), RealMemory a bit under MemTotal and two
# fake GPUs (gres File= symlinks to /dev/null, so jobs get CUDA_VISIBLE_DEVICES); partitions `cpu` (default) and
# `gpu`; no slurmdbd (use `--slurm-status-command squeue`; MinJobAge=600 keeps finished jobs visible to squeue).
# The config lives in /etc/slurm/ because the jobstep plugin strips SLURM_CONF before its inner srun.
#
# Environment: MTG_SLURM_STATE_DIR (default /var/lib/mindthegap-slurm), MTG_SLURM_CGROUP_PLUGIN (default:
# cgroup/v2 on a pure cgroup2 host, else cgroup/v1), MTG_SLURM_START_TIMEOUT (seconds, default 60).
set -uo pipefail

CANNOT=3
STATE_DIR=${MTG_SLURM_STATE_DIR:-/var/lib/mindthegap-slurm}
CONF_DIR=/etc/slurm
RUN_DIR=$STATE_DIR/run
LOG_DIR=$STATE_DIR/log
PIDS=$RUN_DIR/pids            # lines "<name> <pid>" for the daemons this script started
START_TIMEOUT=${MTG_SLURM_START_TIMEOUT:-60}
PACKAGES=(slurmd slurmctld slurm-client munge)
MARKER="# written by tests/slurm/cluster.sh"

log() { echo "cluster.sh: $*" >&2; }
cannot() { echo "cannot run SLURM here: $*" >&2; exit "$CANNOT"; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# A process is alive when it exists, is no zombie (PID 1 here may not reap orphans) and has the expected name.
alive() {
    local name=$1 pid=$2 state comm
    [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/stat ]] || return 1
    state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $state && $state != Z && $state != X ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "$name" ]]
}

recorded_pid() { [[ -f $PIDS ]] && awk -v n="$1" '$1 == n { print $2 }' "$PIDS" | tail -n1; }

have_binaries() {
    command -v munged >/dev/null && command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
        command -v sinfo >/dev/null && command -v sbatch >/dev/null
}

munge_works() { command -v munge >/dev/null && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

node_state() { timeout 10 sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n1; }

is_up() {
    local d pid
    for d in slurmctld slurmd; do
        pid=$(recorded_pid "$d")
        alive "$d" "$pid" || return 1
    done
    [[ -n $(node_state) ]]
}

NODE=$(hostname -s)

install_packages() {
    have_binaries && return 0
    command -v apt-get >/dev/null || cannot "slurm binaries missing and no apt-get to install them"
    local t0 missing=() p
    t0=$(now)
    for p in "${PACKAGES[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    log "installing ${missing[*]:-${PACKAGES[*]}}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${PACKAGES[@]}" >"$LOG_DIR/apt.log" 2>&1; then
        apt-get update >>"$LOG_DIR/apt.log" 2>&1 || true
        apt-get install -y --no-install-recommends "${PACKAGES[@]}" >>"$LOG_DIR/apt.log" 2>&1 ||
            cannot "apt-get install ${PACKAGES[*]} failed (see $LOG_DIR/apt.log)"
    fi
    have_binaries || cannot "packages installed but slurm binaries still missing"
    log "packages installed in $(elapsed "$t0") s"
}

write_config() {
    local cpus mem_kb mem_mb cgroup_plugin
    cpus=$(nproc)
    mem_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
    # a bit under MemTotal: slurmd drains a node whose RealMemory exceeds what it finds
    mem_mb=$((mem_kb / 1024 * 95 / 100))
    if [[ -n ${MTG_SLURM_CGROUP_PLUGIN:-} ]]; then
        cgroup_plugin=$MTG_SLURM_CGROUP_PLUGIN
    elif [[ $(stat -fc %T /sys/fs/cgroup 2>/dev/null) == cgroup2fs ]]; then
        cgroup_plugin=cgroup/v2
    else
        cgroup_plugin=cgroup/v1 # cgroup/v2 is fatal on hybrid hosts ("Hybrid mode is not supported")
    fi

    mkdir -p "$CONF_DIR" "$STATE_DIR/dev" "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd" "$RUN_DIR" "$LOG_DIR"
    # fake GPUs: gres File= must name device files; symlinks to /dev/null pass, plain files do not
    ln -sfn /dev/null "$STATE_DIR/dev/fakegpu0"
    ln -sfn /dev/null "$STATE_DIR/dev/fakegpu1"

    cat >"$CONF_DIR/slurm.conf" <<EOF
$MARKER
ClusterName=mindthegap-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
GresTypes=gpu
ReturnToService=2
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPort=6817
SlurmdPort=6818
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmdTimeout=300
MailProg=/bin/true
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:2 State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE Default=NO MaxTime=INFINITE State=UP
EOF
    cat >"$CONF_DIR/cgroup.conf" <<EOF
$MARKER
# slurmd 22.05 loads a cgroup plugin even when nothing uses it
CgroupPlugin=$cgroup_plugin
EOF
    cat >"$CONF_DIR/gres.conf" <<EOF
$MARKER
AutoDetect=off
NodeName=$NODE Name=gpu File=$STATE_DIR/dev/fakegpu[0-1]
EOF
}

start_munge() {
    if munge_works; then
        log "munged already running (not started by this script)"
        return 0
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile=/etc/munge/munge.key >/dev/null 2>&1 ||
                dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
    fi
    local user=munge
    id munge >/dev/null 2>&1 || user=root
    chown "$user:$user" /etc/munge /etc/munge/munge.key
    chmod 0700 /etc/munge
    chmod 0400 /etc/munge/munge.key
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown "$user:$user" /run/munge /var/lib/munge /var/log/munge
    chmod 0755 /run/munge
    rm -f /run/munge/munged.pid
    if [[ $user == root ]]; then
        munged --force --pid-file=/run/munge/munged.pid || die "munged failed to start"
    else
        runuser -u munge -- munged --pid-file=/run/munge/munged.pid || die "munged failed to start"
    fi
    local i pid
    for i in $(seq 50); do
        munge_works && break
        sleep 0.1
    done
    munge_works || die "munged started but munge -n | unmunge fails"
    pid=$(cat /run/munge/munged.pid 2>/dev/null)
    alive munged "$pid" || die "munged pid file does not name a live munged"
    echo "munged $pid" >>"$PIDS"
}

start_daemon() { # name
    local name=$1 pidfile=$RUN_DIR/$1.pid i pid=
    rm -f "$pidfile"
    "$name" >>"$LOG_DIR/$name.out" 2>&1 || {
        tail -n 20 "$LOG_DIR/$name.log" >&2 2>/dev/null
        die "$name failed to start (see $LOG_DIR/$name.log)"
    }
    for i in $(seq 100); do
        pid=$(cat "$pidfile" 2>/dev/null)
        alive "$name" "$pid" && break
        sleep 0.1
    done
    alive "$name" "$pid" || {
        tail -n 20 "$LOG_DIR/$name.log" >&2 2>/dev/null
        die "$name did not come up (see $LOG_DIR/$name.log)"
    }
    echo "$name $pid" >>"$PIDS"
}

cmd_start() {
    local t0 t1 state i
    t0=$(now)
    [[ $(id -u) -eq 0 ]] || cannot "needs root (to install packages and run slurmctld/slurmd as root)"
    if [[ $(uname -s) != Linux ]]; then cannot "needs Linux"; fi
    mkdir -p "$LOG_DIR" "$RUN_DIR"
    if have_binaries && is_up; then
        log "already running: $(node_state) (no-op)"
        return 0
    fi
    if [[ -s $PIDS ]]; then
        log "cluster partly up; stopping the rest first"
        cmd_stop
        mkdir -p "$LOG_DIR" "$RUN_DIR"
    fi
    install_packages
    write_config
    t1=$(now)
    : >"$PIDS"
    start_munge
    start_daemon slurmctld
    start_daemon slurmd
    for i in $(seq $((START_TIMEOUT * 5))); do
        state=$(node_state)
        case $state in
        idle) break ;;
        drain* | down*)
            timeout 10 scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 0.2
    done
    if [[ $state != idle ]]; then
        timeout 10 scontrol show node "$NODE" >&2 2>/dev/null
        tail -n 20 "$LOG_DIR/slurmd.log" "$LOG_DIR/slurmctld.log" >&2 2>/dev/null
        die "node $NODE is '${state:-unknown}', not idle, after ${START_TIMEOUT}s"
    fi
    log "cluster up: node $NODE idle; daemons $(elapsed "$t1") s, total start $(elapsed "$t0") s"
    echo "start_seconds=$(elapsed "$t0") daemons_seconds=$(elapsed "$t1")"
}

stop_pid() { # name pid
    local name=$1 pid=$2 i
    alive "$name" "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 100); do
        alive "$name" "$pid" || return 0
        sleep 0.1
    done
    log "$name ($pid) ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null
    for i in $(seq 20); do
        alive "$name" "$pid" || return 0
        sleep 0.1
    done
    log "$name ($pid) still alive"
}

cmd_stop() {
    set +e
    local pid jobs name
    if [[ $(id -u) -ne 0 ]]; then
        log "not root: nothing this user could have started; nothing to stop"
        return 0
    fi
    pid=$(recorded_pid slurmctld)
    if alive slurmctld "$pid"; then
        jobs=$(timeout 10 squeue -h -t PD,R,CG,S -o %i 2>/dev/null)
        if [[ -n $jobs ]]; then
            # shellcheck disable=SC2086
            timeout 10 scancel $jobs >/dev/null 2>&1
            for _ in $(seq 50); do
                [[ -z $(timeout 5 squeue -h -t PD,R,CG,S -o %i 2>/dev/null) ]] && break
                sleep 0.2
            done
        fi
    fi
    for name in slurmd slurmctld munged; do
        pid=$(recorded_pid "$name")
        [[ -n $pid ]] && stop_pid "$name" "$pid"
    done
    rm -rf "$RUN_DIR" "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd" "$STATE_DIR/dev"
    log "stopped"
    return 0
}

cmd_status() {
    if have_binaries && is_up; then
        timeout 10 sinfo
        return 0
    fi
    echo "not running"
    return 1
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
