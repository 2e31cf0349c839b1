#!/usr/bin/env bash
# Cordon lab topology (DESIGN.md section 4, contract): network namespaces joined by
# veth pairs, the dataplane inline between `modality` and the `lan` switch, cordon-controld
# managing it (API socket /run/cordon-lab/controld.sock), and the lab's real services
# (storescp on `pacs`, an MLLP receiver on `ris`).
#
#   tests/topology/lab.sh up | down | status
#   tests/topology/lab.sh exec HOST -- CMD...
#   tests/topology/lab.sh hints            # what to try once the lab is up
#
# Hosts, addresses, MACs and links come from tests/topology/hosts.json. Run state
# (pids, logs, sockets, storescp output) lives in /run/cordon-lab. Needs root.
# See tests/topology/README.md.
#
# Environment:
#   CORDON_LAB_FORWARDER   auto (default: cordon-dataplane if built, else testpmd),
#                          dataplane, or testpmd (plain io forwarding, NO policy)
#   CORDON_DATAPLANE_ARGS  extra arguments appended to the cordon-dataplane command
#   CORDON_TESTPMD_ARGS    extra arguments appended to the dpdk-testpmd command
#   CORDON_LAB_CONTROLD_ARGS extra arguments appended to the cordon-controld command
#   CORDON_LAB_POLICY      the sample policy: the dataplane's start-up policy, and
#                          applied through controld when controld has none yet
#                          (default: examples/policies/lab.json)
#   CORDON_LAB_TIMEOUT     seconds to wait for each service to become ready (default 60)
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/../.." && pwd)
LAB_SH=$LAB_DIR/lab.sh
HOSTS_JSON=$LAB_DIR/hosts.json
PY=/usr/bin/python3 # not the `python3` first on PATH
RUN=/run/cordon-lab
DPDK_PREFIX=cordon-lab
DPDK_RUNTIME_DIR=/var/run/dpdk/$DPDK_PREFIX
DATAPLANE_BIN=$REPO/build/bin/cordon-dataplane
CORDONCTL_BIN=$REPO/build/bin/cordonctl
CONTROLD_BIN=$REPO/build/bin/cordon-controld
WEBD_BIN=$REPO/build/bin/cordon-webd
POLICY=${CORDON_LAB_POLICY:-$REPO/examples/policies/lab.json}
TIMEOUT=${CORDON_LAB_TIMEOUT:-60}
# The vendor path (docs/management-plane.md): the dataplane's kernel-facing service port
# (net_tap) joined to the modality's segment, and the service address controld's firewall
# translates vendor traffic to (vendor_service_address in management.json; not used by
# any lab host, tests/topology/hosts.json).
SVC_IF=svc0
SVC_MAC=02:c0:4d:00:00:fa
# controld puts it on svc0 (docs/management-plane.md, "Vendor path"); lab.sh only waits for it.
SVC_ADDR=$(/usr/bin/python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["vendor_service_address"] + "/" + str(s["vendor_service_prefix_length"]))' "$LAB_DIR/management.json")

# ---------------------------------------------------------------- forwarder
# The inline forwarder between the device port (dp-dev0) and the network port
# (dp-net0), both driven through DPDK net_af_packet inside the `appliance` netns.
# Its command line is defined here and only here. Sets the array FWD_CMD.
forwarder_command() {
  local kind=$1 extra=()
  case $kind in
    dataplane)
      FWD_CMD=(
        "$DATAPLANE_BIN" --no-huge -m 256 --no-pci --file-prefix "$DPDK_PREFIX" -l 0
        "--vdev=net_af_packet0,iface=dp-dev0" "--vdev=net_af_packet1,iface=dp-net0"
        "--vdev=net_tap0,iface=$SVC_IF,mac=$SVC_MAC"
        --
        --pair net_af_packet0:net_af_packet1 --service-port net_tap0
        --control-socket "$RUN/dataplane.sock"
        --state-dir "$RUN/state"
        --policy "$POLICY"
      )
      read -r -a extra <<<"${CORDON_DATAPLANE_ARGS:-}"
      ;;
    testpmd)
      # Stand-in until cordon-dataplane exists: forwards everything, enforces nothing.
      # stdbuf: its stdout is a file, and readiness is read from its log.
      FWD_CMD=(
        stdbuf -oL -eL dpdk-testpmd --no-huge -m 256 --no-pci --file-prefix "$DPDK_PREFIX" -l 0-1
        "--vdev=net_af_packet0,iface=dp-dev0" "--vdev=net_af_packet1,iface=dp-net0"
        --
        --forward-mode=io --total-num-mbufs=2048 -a
      )
      read -r -a extra <<<"${CORDON_TESTPMD_ARGS:-}"
      ;;
    *) die "unknown forwarder kind '$kind'" ;;
  esac
  FWD_CMD+=("${extra[@]}")
}

choose_forwarder() {
  case ${CORDON_LAB_FORWARDER:-auto} in
    auto)
      if [ -x "$DATAPLANE_BIN" ]; then echo dataplane; else echo testpmd; fi
      ;;
    dataplane)
      [ -x "$DATAPLANE_BIN" ] || die "CORDON_LAB_FORWARDER=dataplane but $DATAPLANE_BIN is not built"
      echo dataplane
      ;;
    testpmd) echo testpmd ;;
    *) die "CORDON_LAB_FORWARDER must be auto, dataplane or testpmd (got '${CORDON_LAB_FORWARDER}')" ;;
  esac
}

# ---------------------------------------------------------------- helpers
die() {
  echo "lab.sh: error: $*" >&2
  exit 1
}
say() { echo "lab.sh: $*"; }
warn() { echo "lab.sh: warning: $*" >&2; }

require_root() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (it creates network namespaces); try: sudo $0 $*"
}

require_tools() {
  local t missing=()
  for t in ip ss ethtool sysctl setsid storescp dpdk-testpmd "$PY"; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (run scripts/setup)"
}

# The plan (see lab_plan.py) as lines in PLAN, and the namespace names in NAMESPACES.
load_plan() {
  PLAN=$("$PY" "$LAB_DIR/lab_plan.py" "$HOSTS_JSON") || die "cannot read $HOSTS_JSON"
  mapfile -t NAMESPACES < <(awk '$1 == "netns" { print $2 }' <<<"$PLAN")
}

ns_exists() { [ -e "/run/netns/$1" ]; }
link_exists() { ip -n "$1" link show dev "$2" >/dev/null 2>&1; }

# Run "$@" until it succeeds, for at most $1 seconds (polling every 0.1 s).
wait_until() {
  local limit=$1 deadline
  shift
  deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# pid_ok NS PIDFILE MARKER: the pid in PIDFILE is alive, its command line contains
# MARKER, and it runs in namespace NS. Prints the pid.
pid_ok() {
  local ns=$1 file=$2 marker=$3 pid
  [ -s "$file" ] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$marker" || return 1
  [ "$(ip netns identify "$pid" 2>/dev/null)" = "$ns" ] || return 1
  echo "$pid"
}

# pid_alive_with PIDFILE MARKER: alive with MARKER in its command line, any namespace.
pid_alive_with() {
  local file=$1 marker=$2 pid
  [ -s "$file" ] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$marker" || return 1
  echo "$pid"
}

any_alive() {
  local p
  for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done
  return 1
}
none_alive() { ! any_alive "$@"; }

# Stop these pids: SIGTERM, up to 5 s, then SIGKILL, up to 5 s.
stop_pids() {
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  if ! wait_until 5 none_alive "$@"; then
    kill -KILL "$@" 2>/dev/null || true
    wait_until 5 none_alive "$@" || warn "pids still alive after SIGKILL: $*"
  fi
}

listening() { # NS PORT
  [ -n "$(ss -N "$1" -Hltn "sport = :$2" 2>/dev/null)" ]
}

log_tail() {
  [ -f "$1" ] && tail -n "${2:-20}" "$1" | sed 's/^/    /' >&2
  return 0
}

# ---------------------------------------------------------------- topology
build_topology() {
  local op a b c d e f
  while read -r op a b c d e f; do
    case $op in
      netns)
        ns_exists "$a" || ip netns add "$a"
        ip -n "$a" link set lo up
        ;;
      bridge)
        link_exists "$a" "$b" ||
          ip -n "$a" link add "$b" address "$c" type bridge stp_state 0 forward_delay 0
        ip netns exec "$a" ethtool -K "$b" tx off >/dev/null 2>&1 || true
        ;;
      veth)
        # Created directly inside both namespaces: nothing is ever named in the root netns.
        link_exists "$a" "$b" ||
          ip link add "$b" netns "$a" address "$c" type veth peer name "$e" netns "$d" address "$f"
        # af_packet forwards frames with partial checksums: compute them in software.
        ip netns exec "$a" ethtool -K "$b" tx off >/dev/null
        ip netns exec "$d" ethtool -K "$e" tx off >/dev/null
        ;;
      master)
        ip -n "$a" link set "$b" master "$c"
        ip netns exec "$a" sysctl -q -e -w "net.ipv6.conf.$b.disable_ipv6=1" >/dev/null
        ;;
      dpport)
        # A dataplane port: no IPv4 (none configured), no IPv6, no ARP from the
        # appliance's own stack; promiscuous so the forwarder sees every frame.
        ip -n "$a" link set "$b" promisc on arp off
        ip netns exec "$a" sysctl -q -e -w "net.ipv6.conf.$b.disable_ipv6=1" >/dev/null
        ;;
      addr) ip -n "$a" addr replace "$c" dev "$b" ;;
      up) ip -n "$a" link set "$b" up ;;
      route) ip -n "$a" route replace "$b" via "$c" ;;
      '') ;;
      *) die "unknown plan action '$op'" ;;
    esac
  done <<<"$PLAN"
}

# ---------------------------------------------------------------- services
service_settled() { # NS PORT PID: listening, or the process is gone
  listening "$1" "$2" || ! kill -0 "$3" 2>/dev/null
}

# start_service NAME NS PORT MARKER CMD...: start CMD in NS (own session, logging to
# $RUN/NAME.log, pid in $RUN/NAME.pid) unless it already runs, then wait until it
# listens on PORT.
start_service() {
  local name=$1 ns=$2 port=$3 marker=$4 pid stale
  shift 4
  local pidfile=$RUN/$name.pid log=$RUN/$name.log
  if pid=$(pid_ok "$ns" "$pidfile" "$marker"); then
    say "$name: already running in $ns (pid $pid)"
  else
    if stale=$(pid_alive_with "$pidfile" "$marker"); then
      warn "$name: pid $stale runs outside namespace $ns; stopping it"
      stop_pids "$stale"
    fi
    if listening "$ns" "$port"; then
      die "$name: something else already listens on port $port in $ns: $(ss -N "$ns" -Hltnp "sport = :$port")"
    fi
    echo "--- $(date -Is) lab.sh: starting: $*" >>"$log"
    ip netns exec "$ns" setsid "$@" </dev/null >>"$log" 2>&1 &
    pid=$!
    echo "$pid" >"$pidfile"
    say "$name: started in $ns (pid $pid)"
  fi
  if ! wait_until "$TIMEOUT" service_settled "$ns" "$port" "$pid"; then
    log_tail "$log"
    die "$name: not listening on port $port in $ns after ${TIMEOUT}s (log: $log)"
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    log_tail "$log"
    die "$name: exited during startup (log: $log)"
  fi
}

start_storescp() {
  mkdir -p "$RUN/pacs-store"
  # --fork: one process per association, so an association stalled by the firewall
  # never blocks the next one. -pm/+xa: accept every SOP class and transfer syntax.
  start_service storescp pacs 104 storescp \
    storescp --aetitle PACS --output-directory "$RUN/pacs-store" \
    --promiscuous --accept-all --disable-host-lookup --fork --verbose 104
}

start_mllp() {
  start_service mllp_receiver ris 2575 mllp_receiver.py \
    "$PY" "$LAB_DIR/mllp_receiver.py" --host 0.0.0.0 --port 2575 \
    --output "$RUN/ris-received.hl7"
}

forwarder_ready() { # KIND
  case $1 in
    dataplane)
      [ -S "$RUN/dataplane.sock" ] || return 1
      ip -n appliance link show dev "$SVC_IF" >/dev/null 2>&1 || return 1
      ;;
    testpmd) # "Press enter to exit" after the supervisor's latest start line
      awk '/^supervisor: .* start #/ { r = 0 } /Press enter to exit/ { r = 1 } END { exit !r }' \
        "$RUN/dataplane.log" || return 1 ;;
  esac
  pid_ok appliance "$RUN/forwarder.pid" "$(fwd_marker "$1")" >/dev/null
}

forwarder_settled() { forwarder_ready "$1" || forwarder_failed "$2"; } # KIND LOG_OFFSET

forwarder_failed() { # LOG_OFFSET: the supervisor saw the forwarder exit since then
  tail -c "+$(($1 + 1))" "$RUN/dataplane.log" 2>/dev/null | grep -q '^supervisor: .* exited'
}

# The running forwarder's binary was replaced on disk (rebuilt) since it started.
stale_binary_warning() {
  local pid
  pid=$(<"$RUN/forwarder.pid") || return 0
  if [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == *" (deleted)" ]]; then
    warn "forwarder pid $pid runs a binary that has since been rebuilt; to use the new one:" \
      "kill $pid (the supervisor restarts it) or $0 down && $0 up"
  fi
}

fwd_marker() {
  case $1 in
    dataplane) echo cordon-dataplane ;;
    testpmd) echo dpdk-testpmd ;;
  esac
}

start_forwarder() {
  local kind pid off stale
  if pid=$(pid_ok appliance "$RUN/supervisor.pid" "lab.sh _supervise"); then
    kind=$(cat "$RUN/forwarder.kind" 2>/dev/null || echo unknown)
    say "forwarder: $kind already supervised (supervisor pid $pid)"
    case ${CORDON_LAB_FORWARDER:-auto} in
      auto | "$kind") ;;
      *) warn "CORDON_LAB_FORWARDER=$CORDON_LAB_FORWARDER ignored: $kind already runs (lab.sh down first)" ;;
    esac
    if ! wait_until "$TIMEOUT" forwarder_ready "$kind"; then
      log_tail "$RUN/dataplane.log"
      die "forwarder: $kind is supervised but not ready (log: $RUN/dataplane.log)"
    fi
    stale_binary_warning
    return 0
  fi
  # A forwarder left behind by a supervisor that died (kill -9) would hold the DPDK
  # file prefix: stop it first.
  for kind in dataplane testpmd; do
    if stale=$(pid_alive_with "$RUN/forwarder.pid" "$(fwd_marker "$kind")"); then
      warn "forwarder: stopping orphaned $kind (pid $stale)"
      stop_pids "$stale"
    fi
  done
  kind=$(choose_forwarder)
  forwarder_command "$kind"
  printf '%s\0' "${FWD_CMD[@]}" >"$RUN/forwarder.cmd"
  echo "$kind" >"$RUN/forwarder.kind"
  mkdir -p "$RUN/state"
  rm -f "$RUN/dataplane.sock" "$RUN/forwarder.pid"
  [ -p "$RUN/forwarder.stdin" ] || mkfifo -m 600 "$RUN/forwarder.stdin"
  touch "$RUN/dataplane.log"
  off=$(stat -c %s "$RUN/dataplane.log")
  ip netns exec appliance setsid "$LAB_SH" _supervise </dev/null >>"$RUN/dataplane.log" 2>&1 &
  pid=$!
  echo "$pid" >"$RUN/supervisor.pid"
  say "forwarder: $kind started under supervisor (pid $pid); waiting until ready"
  if [ "$kind" = testpmd ]; then
    warn "forwarder is the dpdk-testpmd STAND-IN: io forwarding, no policy is enforced"
  fi
  if ! wait_until "$TIMEOUT" forwarder_settled "$kind" "$off" ||
    ! forwarder_ready "$kind"; then
    log_tail "$RUN/dataplane.log" 30
    stop_pids "$pid"
    die "forwarder: $kind did not become ready within ${TIMEOUT}s (stopped; log: $RUN/dataplane.log)"
  fi
  say "forwarder: ready (pid $(<"$RUN/forwarder.pid"))"
}

# Runs inside the appliance netns, in its own session, stdout/stderr on the log.
# Restarts the forwarder whenever it exits; SIGTERM stops both.
cmd_supervise() {
  local kind child='' rc starts=0
  echo $$ >"$RUN/supervisor.pid"
  kind=$(<"$RUN/forwarder.kind")
  mapfile -d '' -t FWD_CMD <"$RUN/forwarder.cmd"
  cd "$REPO"
  if [ "$kind" = testpmd ]; then
    # testpmd without -i reads stdin and exits on EOF or a newline: give it a FIFO
    # we also hold open for writing, so the read blocks for ever.
    exec 3<>"$RUN/forwarder.stdin"
  else
    exec 3</dev/null
  fi
  stop_child() {
    if [ -n "$child" ]; then
      echo "supervisor: $(date -Is) stopping $kind (pid $child)"
      stop_pids "$child"
    fi
    echo "supervisor: $(date -Is) stopped"
    exit 0
  }
  trap stop_child TERM INT HUP
  while :; do
    starts=$((starts + 1))
    [ "$kind" = dataplane ] && rm -f "$RUN/dataplane.sock"
    echo "supervisor: $(date -Is) start #$starts: ${FWD_CMD[*]}"
    "${FWD_CMD[@]}" <&3 &
    child=$!
    echo "$child" >"$RUN/forwarder.pid"
    echo "$starts" >"$RUN/forwarder.starts"
    rc=0
    wait "$child" || rc=$?
    echo "supervisor: $(date -Is) $kind pid $child exited with status $rc; restarting in 0.2s"
    child=''
    sleep 0.2 &
    wait $! || true
  done
}

# ---------------------------------------------------------------- controld
# cordon-controld runs in the appliance namespace (where the management interface and,
# later, its firewall live) under its own supervisor; its API socket is
# $RUN/controld.sock, its state $RUN/controld. It talks to the dataplane's socket.
controld_command() {
  CMD=("$CONTROLD_BIN" --state-dir "$RUN/controld" --socket "$RUN/controld.sock"
    --dataplane-socket "$RUN/dataplane.sock"
    --socket-group cordon --trusted-uid "$(id -u cordon-webd)"
    --management-settings "$LAB_DIR/management.json"
    --wireguard-interface wg-cordon --wireguard-address 10.99.0.1/24)
  # Extra arguments, e.g. the browser test's update service (tests/browser/run.sh).
  local extra=()
  read -r -a extra <<<"${CORDON_LAB_CONTROLD_ARGS:-}"
  CMD+=("${extra[@]}")
}

controld_ready() {
  [ -S "$RUN/controld.sock" ] &&
    CORDON_SOCKET=$RUN/controld.sock "$CORDONCTL_BIN" policy get >/dev/null 2>&1
}

# The unprivileged account cordon-webd runs as; group `cordon` may use controld's socket.
ensure_webd_account() {
  getent group cordon >/dev/null || groupadd --system cordon
  id -u cordon-webd >/dev/null 2>&1 ||
    useradd --system --gid cordon --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin cordon-webd
}

start_controld() {
  local pid
  if [ "$(cat "$RUN/forwarder.kind" 2>/dev/null)" != dataplane ] || [ ! -x "$CONTROLD_BIN" ]; then
    warn "controld: not started (needs cordon-dataplane and cordon-controld built)"
    return 0
  fi
  ensure_webd_account
  if ! pid=$(pid_ok appliance "$RUN/controld-supervisor.pid" "lab.sh _supervise_service controld"); then
    mkdir -p "$RUN/controld"
    chmod 700 "$RUN/controld"
    touch "$RUN/controld.log"
    ip netns exec appliance setsid "$LAB_SH" _supervise_service controld </dev/null >>"$RUN/controld.log" 2>&1 &
    pid=$!
    echo "$pid" >"$RUN/controld-supervisor.pid"
    say "controld: started under supervisor (pid $pid); waiting until ready"
  fi
  if ! wait_until "$TIMEOUT" controld_ready; then
    log_tail "$RUN/controld.log" 30
    die "controld: not ready within ${TIMEOUT}s (log: $RUN/controld.log)"
  fi
  # A fresh lab gets the sample policy through controld, as a recorded version.
  if CORDON_SOCKET=$RUN/controld.sock "$CORDONCTL_BIN" policy get | grep -q '"version": 0'; then
    CORDON_SOCKET=$RUN/controld.sock "$CORDONCTL_BIN" policy apply "$POLICY" \
      --comment "lab sample policy" || die "controld: the sample policy $POLICY was refused"
  fi
  # controld puts the service address on the service port (and again after every
  # dataplane restart, within a second): the vendor path is ready when it is there.
  if ! wait_until "$TIMEOUT" service_port_configured; then
    log_tail "$RUN/controld.log" 30
    die "controld: $SVC_IF did not get $SVC_ADDR within ${TIMEOUT}s (log: $RUN/controld.log)"
  fi
  say "controld: ready ($RUN/controld.sock; $SVC_IF $SVC_ADDR)"
}

service_port_configured() {
  ip -n appliance -4 addr show dev "$SVC_IF" 2>/dev/null | grep -q "inet $SVC_ADDR "
}

# cordon-webd on the management address, unprivileged (it binds, then becomes
# cordon-webd), on the management settings' https_port (8443, management.json), which it
# reads from controld and follows. First start: the one-time setup token is in
# $RUN/webd/setup-token.
webd_ready() { ip netns exec appliance ss -Hlnt 'sport = :8443' | grep -q 8443; }

webd_command() {
  CMD=("$WEBD_BIN" --state-dir "$RUN/webd" --app-dir "$REPO/build/webui-app"
    --controld-socket "$RUN/controld.sock" --listen 10.60.0.1 --user cordon-webd
    --san IP:10.60.0.1)
}

start_webd() {
  local pid
  if [ ! -x "$WEBD_BIN" ] || [ ! -S "$RUN/controld.sock" ]; then
    warn "webd: not started (needs cordon-webd built and controld running)"
    return 0
  fi
  if ! pid=$(pid_ok appliance "$RUN/webd-supervisor.pid" "lab.sh _supervise_service webd"); then
    mkdir -p "$RUN/webd"
    touch "$RUN/webd.log"
    ip netns exec appliance setsid "$LAB_SH" _supervise_service webd </dev/null >>"$RUN/webd.log" 2>&1 &
    pid=$!
    echo "$pid" >"$RUN/webd-supervisor.pid"
  fi
  if ! wait_until "$TIMEOUT" webd_ready; then
    log_tail "$RUN/webd.log" 20
    die "webd: not listening on 10.60.0.1:8443 within ${TIMEOUT}s (log: $RUN/webd.log)"
  fi
  say "webd: https://10.60.0.1:8443 under supervisor (pid $pid; first-run setup token: $RUN/webd/setup-token)"
}

# Like cmd_supervise, for controld and webd (the appliance's systemd units restart them
# the same way): runs "${NAME}_command", restarts it whenever it exits; SIGTERM stops
# both. Writes $RUN/NAME.pid (the service) and $RUN/NAME.starts.
cmd_supervise_service() {
  local name=$1 child='' rc starts=0 CMD=()
  echo $$ >"$RUN/$name-supervisor.pid"
  "${name}_command"
  cd "$REPO"
  stop_child() {
    [ -n "$child" ] && stop_pids "$child"
    echo "supervisor: $(date -Is) stopped"
    exit 0
  }
  trap stop_child TERM INT HUP
  while :; do
    starts=$((starts + 1))
    echo "supervisor: $(date -Is) start #$starts: ${CMD[*]}"
    "${CMD[@]}" </dev/null &
    child=$!
    echo "$child" >"$RUN/$name.pid"
    echo "$starts" >"$RUN/$name.starts"
    rc=0
    wait "$child" || rc=$?
    echo "supervisor: $(date -Is) $name pid $child exited with status $rc; restarting in 1s"
    child=''
    sleep 1 &
    wait $! || true
  done
}

# ---------------------------------------------------------------- commands
cmd_up() {
  require_root up
  require_tools
  load_plan
  mkdir -p "$RUN"
  chmod 755 "$RUN"
  printf '%s\n' "$PLAN" >"$RUN/plan"
  build_topology
  # The vendor path routes from the tunnel to the service port: IPv4 forwarding in the
  # appliance namespace only (controld's forward chain allows nothing else).
  ip netns exec appliance sysctl -q -w net.ipv4.ip_forward=1 >/dev/null
  say "topology: namespaces ${NAMESPACES[*]}"
  start_storescp
  start_mllp
  start_forwarder
  start_controld
  start_webd
  # End-to-end probe through the forwarder (lan bridge -> modality). Not fatal: a
  # policy may legitimately drop it.
  if wait_until 5 ip netns exec lan ping -n -q -c 1 -W 1 10.50.0.10 >/dev/null 2>&1; then
    say "path: lan 10.50.0.1 -> modality 10.50.0.10 ping ok (through the forwarder)"
  else
    warn "path: lan 10.50.0.1 -> modality 10.50.0.10 ping got no reply (forwarder or policy)"
  fi
  say "up (status: $0 status; logs: $RUN/*.log)"
}

cmd_down() {
  require_root down
  load_plan
  local ns pid spec name pids=()
  # The supervisors first, so they do not restart what we stop next.
  for name in controld webd; do
    if pid=$(pid_alive_with "$RUN/$name-supervisor.pid" "lab.sh _supervise_service $name"); then
      stop_pids "$pid"
    fi
  done
  if pid=$(pid_alive_with "$RUN/supervisor.pid" "lab.sh _supervise"); then
    stop_pids "$pid"
  fi
  # Every process still inside one of the lab namespaces.
  for ns in "${NAMESPACES[@]}"; do
    ns_exists "$ns" || continue
    mapfile -t -O "${#pids[@]}" pids < <(ip netns pids "$ns" 2>/dev/null)
  done
  # Lab services whose namespace was deleted under them.
  for spec in storescp:storescp mllp_receiver:mllp_receiver.py \
    forwarder:cordon-dataplane forwarder:dpdk-testpmd controld:cordon-controld webd:cordon-webd; do
    if pid=$(pid_alive_with "$RUN/${spec%%:*}.pid" "${spec#*:}"); then pids+=("$pid"); fi
  done
  if [ ${#pids[@]} -gt 0 ]; then
    mapfile -t pids < <(printf '%s\n' "${pids[@]}" | sort -un)
    say "stopping pids ${pids[*]}"
    stop_pids "${pids[@]}"
  fi
  # Deleting a namespace destroys its veths (and so their peers) and the bridge.
  for ns in "${NAMESPACES[@]}"; do
    if ns_exists "$ns"; then
      ip netns del "$ns"
      say "deleted namespace $ns"
    fi
  done
  rm -rf "$RUN" "$DPDK_RUNTIME_DIR"
  say "down"
}

cmd_status() {
  require_root status
  load_plan
  local ns ok=1 present=() missing=() pid fpid kind starts
  for ns in "${NAMESPACES[@]}"; do
    if ns_exists "$ns"; then present+=("$ns"); else missing+=("$ns"); fi
  done
  if [ ${#present[@]} -eq 0 ]; then
    echo "lab: down"
    return 3
  fi
  [ ${#missing[@]} -eq 0 ] || ok=0
  echo "namespaces: ${present[*]}${missing[*]:+ (missing: ${missing[*]})}"

  kind=$(cat "$RUN/forwarder.kind" 2>/dev/null || echo none)
  if pid=$(pid_ok appliance "$RUN/supervisor.pid" "lab.sh _supervise"); then
    starts=$(cat "$RUN/forwarder.starts" 2>/dev/null || echo 0)
    echo "supervisor: pid $pid (forwarder started $starts time(s))"
    if fpid=$(pid_ok appliance "$RUN/forwarder.pid" "$(fwd_marker "$kind")"); then
      echo "forwarder: $kind pid $fpid$([ "$kind" = testpmd ] && echo ' (STAND-IN: io forwarding, no policy)')"
      stale_binary_warning
    else
      echo "forwarder: $kind NOT RUNNING (supervisor restarting it?)"
      ok=0
    fi
    [ -s "$RUN/forwarder.cmd" ] && echo "  command: $(tr '\0' ' ' <"$RUN/forwarder.cmd")"
    if [ "$kind" = dataplane ]; then
      if [ -S "$RUN/dataplane.sock" ]; then
        echo "  control socket: $RUN/dataplane.sock"
      else
        echo "  control socket: $RUN/dataplane.sock MISSING"
        ok=0
      fi
    fi
  else
    echo "forwarder: NOT RUNNING"
    ok=0
  fi

  if [ "$kind" = dataplane ]; then
    if pid=$(pid_ok appliance "$RUN/controld.pid" cordon-controld) && controld_ready; then
      echo "controld: pid $pid, API socket $RUN/controld.sock"
    else
      echo "controld: NOT RUNNING or not answering (log: $RUN/controld.log)"
      ok=0
    fi
  fi

  local name ns_ port marker
  while read -r name ns_ port marker; do
    if pid=$(pid_ok "$ns_" "$RUN/$name.pid" "$marker"); then
      if listening "$ns_" "$port"; then
        echo "$name: pid $pid in $ns_, listening on port $port"
      else
        echo "$name: pid $pid in $ns_, NOT listening on port $port"
        ok=0
      fi
    else
      echo "$name: NOT RUNNING (in $ns_, port $port)"
      ok=0
    fi
  done <<'EOF'
storescp pacs 104 storescp
mllp_receiver ris 2575 mllp_receiver.py
EOF

  echo "interfaces:"
  for ns in "${present[@]}"; do
    ip -n "$ns" -br addr show 2>/dev/null | awk -v ns="$ns" '$1 != "lo" {
      sub(/@.*/, "", $1); a = ""; for (i = 3; i <= NF; i++) if ($i !~ /^fe80:/) a = a " " $i
      printf "  %-10s %-12s %-8s%s\n", ns, $1, $2, a }'
  done
  echo "logs: $RUN/dataplane.log $RUN/controld.log $RUN/storescp.log $RUN/mllp_receiver.log"
  if [ $ok -eq 1 ]; then
    echo "lab: up"
    return 0
  fi
  echo "lab: partially up (run: $0 up)"
  return 3
}

cmd_exec() {
  [ $# -ge 1 ] || die "usage: $0 exec HOST -- CMD..."
  local host=$1 names
  shift
  [ "${1:-}" = -- ] && shift
  [ $# -ge 1 ] || die "usage: $0 exec HOST -- CMD..."
  require_root exec
  if [ -r "$RUN/plan" ]; then
    names=$(awk '$1 == "netns" { print $2 }' "$RUN/plan")
  else
    names=$("$PY" "$LAB_DIR/lab_plan.py" "$HOSTS_JSON" | awk '$1 == "netns" { print $2 }')
  fi
  grep -qxF -- "$host" <<<"$names" || die "unknown host '$host' (one of: $(echo "$names" | tr '\n' ' '))"
  ns_exists "$host" || die "host '$host' does not exist: the lab is not up (run: $0 up)"
  exec ip netns exec "$host" "$@"
}

cmd_hints() {
  local kind
  kind=$(cat "$RUN/forwarder.kind" 2>/dev/null || echo none)
  cat <<EOF

Cordon lab: modality 10.50.0.10 (AE CT1) -> appliance (forwarder: $kind) -> lan:
pacs 10.50.0.20 (AE PACS, port 104), ris 10.50.0.30 (MLLP 2575), attacker 10.50.0.66;
admin 10.60.0.5 -> appliance 10.60.0.1; vendor 192.0.2.50 -> appliance 192.0.2.1.

Try (as root, from the repository root):
  tests/topology/lab.sh status
  tests/topology/lab.sh exec modality -- echoscu -v -aet CT1 -aec PACS 10.50.0.20 104
  tests/topology/make_test_dicom.sh $RUN/ct.dcm
  tests/topology/lab.sh exec modality -- storescu -v -aet CT1 -aec PACS 10.50.0.20 104 $RUN/ct.dcm
  ls $RUN/pacs-store
  tests/topology/lab.sh exec modality -- /usr/bin/python3 tests/topology/mllp_send.py 10.50.0.30 2575
  cat $RUN/ris-received.hl7
EOF
  if [ -x "$CORDONCTL_BIN" ]; then
    echo "  build/bin/cordonctl policy get"
    echo "  build/bin/cordonctl policy history"
    echo "  build/bin/cordonctl events --follow"
    echo "  build/bin/cordonctl audit verify"
  else
    echo "  build/bin/cordonctl policy get   (cordonctl is not built in this tree yet)"
  fi
  if [ -x "$WEBD_BIN" ]; then
    echo "  web UI: https://10.60.0.1:8443 from the admin host (10.60.0.5); first-run setup token:"
    echo "          $RUN/webd/setup-token (POST /api/v1/setup; docs/webui.md)"
  else
    echo "  web UI: https://10.60.0.1:8443 once cordon-webd is built (not started)"
  fi
  if [ "$kind" = testpmd ]; then
    echo
    echo "NOTE: the forwarder is the dpdk-testpmd STAND-IN (cordon-dataplane is not built):"
    echo "      every frame is forwarded as is; no policy is enforced."
  fi
  cat <<EOF

Logs: $RUN/dataplane.log  $RUN/controld.log  $RUN/storescp.log  $RUN/mllp_receiver.log
Stop: make lab-down   (or tests/topology/lab.sh down)
EOF
}

usage() {
  cat >&2 <<EOF
usage: $0 up | down | status | hints
       $0 exec HOST -- CMD...
EOF
  exit 2
}

main() {
  [ $# -ge 1 ] || usage
  local cmd=$1
  shift
  case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    exec) cmd_exec "$@" ;;
    hints) cmd_hints ;;
    _supervise) cmd_supervise ;;
    _supervise_service) cmd_supervise_service "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
