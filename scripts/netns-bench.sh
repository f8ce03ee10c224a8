#!/usr/bin/env bash
# LAN- and WAN-like timings of mpcflow with every process in its own network namespace.
#
# Party 0, party 1 and the dealer each run in a namespace of their own, joined through veth
# pairs to a bridge in a fourth namespace. `tc netem` on each endpoint's interface adds the
# one-way delay and the rate limit of the profile to everything that endpoint sends, so a
# message between two endpoints sees the delay once and a round trip twice.
#
#   scripts/netns-bench.sh                       # profiles none, lan and wan, 3 runs each
#   scripts/netns-bench.sh --profiles wan --repeat 5
#   scripts/netns-bench.sh --profile custom=25ms,100mbit
#
# Profiles: lan = 0.1 ms and 10 Gbit/s, wan = 10 ms and 1 Gbit/s, none = plain veth.
# Needs Linux, iproute2 and root (or CAP_NET_ADMIN); says so plainly and exits 3 otherwise. A
# profile with a delay needs the kernel's netem qdisc; without it that profile is skipped, saying so.
# Uses target/release/mpcflow (built if missing, or MPCFLOW_BIN=path).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PROFILES="none,lan,wan"
REPEAT=3
RELU_N=100000
declare -A CUSTOM=()

while [[ $# -gt 0 ]]; do
    case "$1" in
        --profiles) PROFILES="$2"; shift 2 ;;
        --profile)
            name="${2%%=*}"; CUSTOM[$name]="${2#*=}"; PROFILES="$name"; shift 2 ;;
        --repeat) REPEAT="$2"; shift 2 ;;
        --relu) RELU_N="$2"; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

profile_spec() { # NAME -> "delay rate" (empty for none)
    case "$1" in
        lan) echo "0.1ms 10gbit" ;;
        wan) echo "10ms 1gbit" ;;
        none) echo "" ;;
        *)
            [[ -n "${CUSTOM[$1]:-}" ]] || { echo "unknown profile $1 (lan, wan, none or --profile NAME=DELAY,RATE)" >&2; exit 2; }
            echo "${CUSTOM[$1]/,/ }" ;;
    esac
}

PREFIX="mpcf$$"
NS_BR="$PREFIX-br"
ENDPOINTS=(dealer p0 p1)
declare -A ADDR=([dealer]=10.77.0.1 [p0]=10.77.0.2 [p1]=10.77.0.3)
WORK=$(mktemp -d)

cleanup() {
    for e in "${ENDPOINTS[@]}" br; do ip netns del "$PREFIX-$e" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- Can this machine do it at all? ---
if ! command -v ip >/dev/null 2>&1; then
    echo "this machine cannot run the namespace benchmark: iproute2 (\`ip\`) is not installed" >&2; exit 3
fi
if ! err=$(ip netns add "$NS_BR" 2>&1); then
    echo "this machine does not allow network namespaces: \`ip netns add\` said: $err" >&2
    echo "run as root (or with CAP_NET_ADMIN) on Linux; in a container, start it with --cap-add NET_ADMIN" >&2
    exit 3
fi

BIN="${MPCFLOW_BIN:-$ROOT/target/release/mpcflow}"
if [[ ! -x "$BIN" ]]; then
    echo "building $BIN ..." >&2
    cargo build --release --locked -q
fi

# --- Topology: one namespace per endpoint, a bridge between them ---
ip -n "$NS_BR" link add br0 type bridge
ip -n "$NS_BR" link set br0 up
ip -n "$NS_BR" link set lo up
for e in "${ENDPOINTS[@]}"; do
    ns="$PREFIX-$e"
    ip netns add "$ns"
    ip link add "v$e$$" type veth peer name "b$e$$"
    ip link set "v$e$$" netns "$ns"
    ip link set "b$e$$" netns "$NS_BR"
    ip -n "$ns" link set "v$e$$" name eth0
    ip -n "$ns" addr add "${ADDR[$e]}/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    ip -n "$NS_BR" link set "b$e$$" master br0
    ip -n "$NS_BR" link set "b$e$$" up
done

set_profile() { # NAME
    local spec
    spec=$(profile_spec "$1") || exit 2
    read -r delay rate <<<"$spec" || true
    for e in "${ENDPOINTS[@]}"; do
        ip netns exec "$PREFIX-$e" tc qdisc del dev eth0 root 2>/dev/null || true
        [[ -z "${delay:-}" ]] && continue
        if ! err=$(ip netns exec "$PREFIX-$e" tc qdisc add dev eth0 root netem delay "$delay" rate "$rate" limit 100000 2>&1); then
            NETEM_ERROR="$err"
            return 1
        fi
    done
}

# --- Certificates and a deployment for every party name used below ---
"$BIN" certs new "$WORK/certs" --parties alice,bob,north,south,dealer --deployment "$WORK/parties.yaml" 2>/dev/null
sed -i -E \
    -e "s/^( *dealer: .*address: )[0-9.:]+/\1${ADDR[dealer]}:7100/" \
    -e "s/^( *(alice|north): .*address: )[0-9.:]+/\1${ADDR[p0]}:7101/" \
    -e "s/^( *(bob|south): .*address: )[0-9.:]+/\1${ADDR[p1]}:7102/" \
    "$WORK/parties.yaml"

# --- Pipelines ---
cat >"$WORK/relu.yaml" <<EOF
version: 1
name: relu_$RELU_N
parties: [alice, bob]
protocol: fss2pc
inputs:
  x: { owner: alice, dtype: fixed, shape: [n] }
  y: { owner: bob, dtype: fixed, shape: [n] }
nodes:
  s: { op: add, inputs: [x, y] }
  r: { op: relu, inputs: [s] }
  total: { op: sum, inputs: [r], axis: 0 }
outputs:
  total: { reveal_to: [alice] }
EOF
awk -v n="$RELU_N" 'BEGIN { printf "["; for (i = 0; i < n; i++) printf "%s%d", (i ? "," : ""), (i % 200) - 100; print "]" }' >"$WORK/v.json"

# name | file | party0 name | party0 inputs | party1 name | party1 inputs
JOBS=(
    "millionaires|graphs/millionaires.yaml|alice|alice_wealth=5000000|bob|bob_wealth=3000000"
    "hospital_stats|graphs/hospital_stats.yaml|north|north_bp=@graphs/data/north.csv:systolic_bp|south|south_bp=@graphs/data/south.csv:systolic_bp"
    "relu_$RELU_N|$WORK/relu.yaml|alice|x=@$WORK/v.json|bob|y=@$WORK/v.json"
)

run_once() { # FILE P0 IN0 P1 IN1 -> prints party 0's JSON
    local file=$1 p0=$2 in0=$3 p1=$4 in1=$5
    local common=(--deployment "$WORK/parties.yaml" --timeout 120 --connect-timeout 30)
    ip netns exec "$PREFIX-dealer" "$BIN" dealer "$file" "${common[@]}" 2>"$WORK/dealer.err" &
    local d=$!
    ip netns exec "$PREFIX-p1" "$BIN" party --as "$p1" "$file" "${common[@]}" --input "$in1" --json >/dev/null 2>"$WORK/p1.err" &
    local b=$!
    local ok=0
    ip netns exec "$PREFIX-p0" "$BIN" party --as "$p0" "$file" "${common[@]}" --input "$in0" --json 2>"$WORK/p0.err" || ok=1
    wait "$b" || ok=1
    wait "$d" || ok=1
    if [[ $ok -ne 0 ]]; then
        echo "a process failed:" >&2; cat "$WORK"/p0.err "$WORK"/p1.err "$WORK"/dealer.err >&2; exit 1
    fi
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf "%-8s %-16s %10s %10s %10s %14s %7s\n" profile pipeline "median_s" "min_s" "setup_s" "online_B_p0" rounds
IFS=',' read -r -a PLIST <<<"$PROFILES"
for prof in "${PLIST[@]}"; do
    if ! set_profile "$prof"; then
        echo "$prof: skipped: this kernel has no tc netem (module sch_netem), so no delay can be added: $NETEM_ERROR"
        continue
    fi
    for job in "${JOBS[@]}"; do
        IFS='|' read -r name file p0 in0 p1 in1 <<<"$job"
        times=()
        setups=()
        for ((i = 0; i < REPEAT; i++)); do
            out=$(run_once "$file" "$p0" "$in0" "$p1" "$in1")
            times+=("$(sed -E 's/.*"wall_s":([0-9.e+-]+).*/\1/' <<<"$out")")
            setups+=("$(sed -E 's/.*"setup_s":([0-9.e+-]+).*/\1/' <<<"$out")")
        done
        bytes=$(sed -E 's/.*"online_bytes_sent":([0-9]+).*/\1/' <<<"$out")
        rounds=$(sed -E 's/.*"rounds":([0-9]+).*/\1/' <<<"$out")
        med=$(printf "%s\n" "${times[@]}" | median)
        min=$(printf "%s\n" "${times[@]}" | sort -g | head -1)
        setup=$(printf "%s\n" "${setups[@]}" | median)
        printf "%-8s %-16s %10.4f %10.4f %10.4f %14s %7s\n" "$prof" "$name" "$med" "$min" "$setup" "$bytes" "$rounds"
    done
done
echo "(party 0: median_s and min_s from the end of the handshake to the end of the run; setup_s is connecting and the handshake; $REPEAT runs each)"
