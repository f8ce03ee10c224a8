#!/usr/bin/env bash
# A chain of ReLUs run in one process and as three processes over TLS on loopback (two parties
# and the dealer), side by side: the cost of the real transport, the dealer's links included.
#
#   scripts/chain-bench.sh [ELEMENTS] [DEPTH] [REPEAT]       (defaults: 200000 4 3)
#
# Uses target/release/mpcflow (built if missing; set MPCFLOW to use another binary) and
# fss2pc. Prints the median wall time of each way (process start to the last exit), their
# ratio, and the material the dealer sends per party. Only loopback addresses are used.
# The chain is alice's input alone, which alice would compute on in the clear (local
# evaluation): every process runs with --all-under-protocol, to measure the protocol.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
depth=${2:-4}
repeat=${3:-3}
bin=${MPCFLOW:-target/release/mpcflow}
[ -x "$bin" ] || cargo build --release --locked -p mpcflow
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
base=$((26000 + RANDOM % 5000))
"$bin" certs new "$work/certs" --parties alice,bob,dealer --base-port "$base" --deployment "$work/parties.yaml" >/dev/null 2>&1

{
  echo "version: 1"
  echo "name: relu_chain"
  echo "parties: [alice, bob]"
  echo "protocol: fss2pc"
  echo "inputs:"
  echo "  x: { owner: alice, dtype: fixed, shape: [$n] }"
  echo "constants:"
  echo "  shift: { value: 0.5 }"
  echo "nodes:"
  prev=x
  for ((i = 1; i <= depth; i++)); do
    echo "  s$i: { op: sub, inputs: [$prev, shift] }"
    echo "  r$i: { op: relu, inputs: [s$i] }"
    prev=r$i
  done
  echo "  total: { op: sum, inputs: [$prev], axis: 0 }"
  echo "outputs:"
  echo "  total: { reveal_to: [alice, bob] }"
} >"$work/chain.yaml"
awk -v n="$n" 'BEGIN { printf "["; for (i = 0; i < n; i++) printf "%s%.3f", (i ? "," : ""), (i * 7919 % 2001) / 100.0 - 10; print "]" }' >"$work/x.json"

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

one=()
three=()
for ((r = 1; r <= repeat; r++)); do
  t0=$(now)
  "$bin" run "$work/chain.yaml" --all-under-protocol --input x=@"$work/x.json" --json >"$work/one.json"
  one+=("$(echo "$(now) - $t0" | bc)")
  t0=$(now)
  "$bin" dealer --all-under-protocol --deployment "$work/parties.yaml" "$work/chain.yaml" >"$work/dealer.out" 2>"$work/dealer.err" &
  d=$!
  "$bin" party --as bob --all-under-protocol --deployment "$work/parties.yaml" "$work/chain.yaml" --json >"$work/bob.json" 2>"$work/bob.err" &
  b=$!
  "$bin" party --as alice --all-under-protocol --deployment "$work/parties.yaml" "$work/chain.yaml" --input x=@"$work/x.json" --json \
    >"$work/alice.json" 2>"$work/alice.err"
  wait "$b" || { cat "$work/bob.err" >&2; exit 1; }
  wait "$d" || { cat "$work/dealer.err" >&2; exit 1; }
  three+=("$(echo "$(now) - $t0" | bc)")
done
m1=$(printf '%s\n' "${one[@]}" | median)
m3=$(printf '%s\n' "${three[@]}" | median)
echo "relu chain: $depth x $n elements, $repeat runs each"
echo "  one process:                    median ${m1} s"
echo "  three processes, TLS loopback:  median ${m3} s"
echo "  ratio: $(echo "scale=2; $m3 / $m1" | bc)"
grep -o '"dealer_bytes":\[[0-9,]*\]' "$work/one.json" | head -1 | sed 's/^/  material per party (bytes): /' || true
