#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, with accounting, for trying and testing the
# cluster path without a cluster:
#
#   scripts/slurm_local.sh up       # installs what is missing (Debian: slurm-wlm, munge,
#                                   # slurmdbd, mariadb-server), configures, starts, waits
#   scripts/slurm_local.sh status   # which of its daemons run, and sinfo
#   scripts/slurm_local.sh down     # stops only the processes `up` started (their pid files)
#
# Run as root (SlurmUser=root). Everything it writes lives in $SLURM_LOCAL_DIR (default
# /var/tmp/solo-plugins-slurm), except /etc/slurm/slurm.conf and /etc/slurm/slurmdbd.conf,
# which the SLURM commands read from there; it writes those only when they are absent or
# were written by it (first line "# solo-plugins slurm_local.sh"), and `down` removes them.
# The node has this machine's cores and memory, one default partition ("local"), and
# accounting through slurmdbd on a MariaDB that listens on 127.0.0.1 only, so that sacct and
# submitit's job-state tracking work as on a real cluster.
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/var/tmp/solo-plugins-slurm}
MARK="# solo-plugins slurm_local.sh"
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
DB_PORT=${SLURM_LOCAL_DB_PORT:-33306}
DBD_PORT=${SLURM_LOCAL_DBD_PORT:-36819}
CTLD_PORT=${SLURM_LOCAL_CTLD_PORT:-36817}
SLURMD_PORT=${SLURM_LOCAL_SLURMD_PORT:-36818}
NODE=$(hostname -s)

say() { printf 'slurm_local: %s\n' "$*"; }
die() { printf 'slurm_local: %s\n' "$*" >&2; exit 1; }

running() {  # running NAME: the daemon whose pid file `up` wrote is alive
  local pid
  [ -f "$DIR/$1.pid" ] || return 1
  pid=$(cat "$DIR/$1.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2
  shift 2
  for _ in $(seq "$limit"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "$what did not come up within ${limit}s (logs in $DIR/log)"
}

ours_or_absent() { [ ! -e "$1" ] || head -n 1 "$1" | grep -qF "$MARK"; }

install_missing() {
  local need=()
  command -v slurmctld >/dev/null || need+=(slurm-wlm)
  command -v slurmdbd >/dev/null || need+=(slurmdbd)
  command -v munged >/dev/null || need+=(munge)
  command -v mariadbd >/dev/null || command -v mysqld >/dev/null || need+=(mariadb-server)
  if [ ${#need[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || die "missing ${need[*]} and no apt-get to install them"
    say "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

start_munge() {
  running munged && return 0
  mkdir -p /etc/munge "$DIR/munge"
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  fi
  chown root:root /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge && chmod 755 /run/munge
  munged --force --key-file=/etc/munge/munge.key --socket=/run/munge/munge.socket.2 \
    --pid-file="$DIR/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
  wait_for 20 munged munge -n
}

start_mariadb() {
  running mariadb && return 0
  local server
  server=$(command -v mariadbd || command -v mysqld)
  if [ ! -d "$DIR/db/mysql" ]; then
    mkdir -p "$DIR/db"
    mariadb-install-db --user=root --datadir="$DIR/db" --auth-root-authentication-method=socket \
      >"$DIR/log/mariadb-install.log" 2>&1
  fi
  "$server" --user=root --datadir="$DIR/db" --socket="$DIR/mariadb.sock" --pid-file="$DIR/mariadb.pid" \
    --bind-address=127.0.0.1 --port="$DB_PORT" --log-error="$DIR/log/mariadb.log" >/dev/null 2>&1 &
  wait_for 60 MariaDB mariadb --socket="$DIR/mariadb.sock" -e "select 1"
  mariadb --socket="$DIR/mariadb.sock" -e "
    CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm-local';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
    FLUSH PRIVILEGES;"
}

write_configs() {
  ours_or_absent "$CONF" || die "$CONF exists and was not written by this script; move it away first"
  ours_or_absent "$DBD_CONF" || die "$DBD_CONF exists and was not written by this script; move it away first"
  local cpus mem
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)  # MB, 10% left to the system
  mkdir -p /etc/slurm "$DIR/ctld" "$DIR/slurmd"
  cat >"$CONF" <<EOF
$MARK: a one-node cluster for trying the cluster path; 'slurm_local.sh down' removes it.
ClusterName=local
SlurmctldHost=$NODE
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/slurmd
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
MinJobAge=600
KillWait=10
NodeName=$NODE CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  cat >"$DBD_CONF" <<EOF
$MARK: slurmdbd of the one-node cluster.
AuthType=auth/munge
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm-local
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$DBD_CONF"
  chmod 644 "$CONF"
}

up() {
  [ "$(id -u)" -eq 0 ] || die "run as root (the cluster's SlurmUser is root)"
  mkdir -p "$DIR/log"
  install_missing
  write_configs
  start_munge
  start_mariadb
  if ! running slurmdbd; then
    slurmdbd
    wait_for 60 slurmdbd sacctmgr -n list cluster
  fi
  sacctmgr -i -Q add cluster local >/dev/null 2>&1 || true
  if ! running slurmctld; then
    slurmctld
    wait_for 60 slurmctld scontrol ping
  fi
  if ! running slurmd; then
    slurmd
  fi
  wait_for 60 "the node" bash -c "sinfo -h -N -o '%T' | grep -qE '^(idle|mixed|allocated)'"
  say "up: node $NODE, $(nproc) CPUs, partition 'local' ($(sinfo -h -o '%D node(s) %T' | head -n 1))"
}

down() {
  local name pid
  for name in slurmd slurmctld slurmdbd mariadb munged; do
    if running "$name"; then
      pid=$(cat "$DIR/$name.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
      say "stopped $name ($pid)"
    fi
    rm -f "$DIR/$name.pid"
  done
  for file in "$CONF" "$DBD_CONF"; do
    if [ -e "$file" ] && ours_or_absent "$file"; then rm -f "$file"; fi
  done
}

status() {
  local name
  for name in munged mariadb slurmdbd slurmctld slurmd; do
    if running "$name"; then say "$name running ($(cat "$DIR/$name.pid"))"; else say "$name not running"; fi
  done
  sinfo 2>/dev/null || say "sinfo cannot reach a cluster"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 up|down|status" ;;
esac
