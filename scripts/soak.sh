#!/usr/bin/env bash
# Back-to-back three-process sessions on loopback, to show that nothing piles up from run to run:
# every run must succeed, no port of the deployment may stay bound after it, and the processes'
# peak memory and open files must not grow across runs.
#
#   scripts/soak.sh [HOSPITAL_RUNS] [DIGITS_RUNS]        (defaults: 100 and 20)
#
# Uses target/release/mpcflow (built if missing; set MPCFLOW to use another binary). For each
# run it records every process's exit status, peak resident memory (VmHWM from /proc) and
# open file descriptors (both sampled while it runs), then prints the medians of the first and
# last ten runs. Exits non-zero on any failed run, a port left bound, or growth of more than
# 25 % in the median of the last ten runs over the first ten. Each run is fresh processes, so
# this catches what piles up outside them; the peaks are sampled every 10 ms and vary by some
# 10 % between runs. Only loopback addresses are used.
set -euo pipefail
cd "$(dirname "$0")/.."
hospital_runs=${1:-100}
digits_runs=${2:-20}
bin=${MPCFLOW:-target/release/mpcflow}
[ -x "$bin" ] || cargo build --release --locked -p mpcflow
work=$(mktemp -d)
trap '[ -n "${SOAK_KEEP:-}" ] || rm -rf "$work"' EXIT
base=$((21000 + RANDOM % 5000))
"$bin" certs new "$work/certs" --parties north,south,patient,clinic,dealer --base-port "$base" \
  --deployment "$work/parties.yaml" >/dev/null
ports=$(grep -o '127.0.0.1:[0-9]*' "$work/parties.yaml" | cut -d: -f2 | sort -u)

# Samples a process until it exits: prints "peak_kib max_fds". The peak comes from the
# kernel's accounting (VmHWM, read at each sample), the open files from /proc/PID/fd.
watch_proc() {
  local pid=$1 peak=0 fds=0 rss n
  while kill -0 "$pid" 2>/dev/null; do
    # The process may end between two reads: a failed read is no sample, not an error.
    rss=$(awk '/^VmHWM/ {print $2; exit}' "/proc/$pid/status" 2>/dev/null || true)
    n=$( (find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null || true) | wc -l)
    [ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak=$rss
    [ -n "$n" ] && [ "$n" -gt "$fds" ] && fds=$n
    sleep 0.01
  done
  echo "$peak $fds"
}

# One session: the pipeline, then "NAME ARGS..." per process (the dealer's NAME is `dealer`);
# prints "peak_kib max_fds" per process.
session() {
  local file=$1; shift
  local pids=() names=() out=() i
  for spec in "$@"; do
    local name=${spec%% *} args=""
    [ "$spec" != "$name" ] && args=${spec#* }
    if [ "$name" = dealer ]; then
      "$bin" dealer --deployment "$work/parties.yaml" "$file" --timeout 30 --connect-timeout 30 \
        >"$work/$name.out" 2>"$work/$name.err" &
    else
      # shellcheck disable=SC2086
      "$bin" party --as "$name" --deployment "$work/parties.yaml" "$file" $args \
        --timeout 30 --connect-timeout 30 >"$work/$name.out" 2>"$work/$name.err" &
    fi
    pids+=($!); names+=("$name")
  done
  local watchers=()
  for pid in "${pids[@]}"; do
    watch_proc "$pid" >"$work/watch.$pid" &
    watchers+=($!)
  done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      echo "soak: ${names[$i]} failed:" >&2
      cat "$work/${names[$i]}.err" >&2
      return 1
    fi
  done
  for w in "${watchers[@]}"; do wait "$w"; done
  for pid in "${pids[@]}"; do out+=("$(cat "$work/watch.$pid")"); done
  echo "${out[*]}"
}

check_ports() {
  local bound
  bound=$(ss -ltnH 2>/dev/null | awk '{print $4}' | grep -E "127.0.0.1:($(echo $ports | tr ' ' '|'))$" || true)
  if [ -n "$bound" ]; then
    echo "soak: ports still bound after a run: $bound" >&2
    exit 1
  fi
}

# Median of the column $2 (1-based) of the lines in file $1, between lines $3 and $4.
median() { sed -n "$3,$4p" "$1" | awk -v c="$2" '{print $c}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

report() {
  local what=$1 log=$2 runs=$3 cols=$4 k
  echo "$what: $runs runs, every one successful, no port left bound"
  for ((k = 1; k <= cols; k += 2)); do
    local first last fdf fdl
    first=$(median "$log" "$k" 1 10); last=$(median "$log" "$k" $((runs - 9)) "$runs")
    fdf=$(median "$log" $((k + 1)) 1 10); fdl=$(median "$log" $((k + 1)) $((runs - 9)) "$runs")
    echo "  process $(((k + 1) / 2)): peak RSS median first 10 = ${first} KiB, last 10 = ${last} KiB; open files ${fdf} -> ${fdl}"
    if [ "$last" -gt $((first + first / 4)) ] || [ "$fdl" -gt $((fdf + fdf / 10 + 2)) ]; then
      echo "soak: $what grew across runs" >&2
      exit 1
    fi
  done
}

hospital=graphs/hospital_stats.yaml
log="$work/hospital.log"
for ((r = 1; r <= hospital_runs; r++)); do
  session "$hospital" "north --input north_bp=@graphs/data/north.csv:systolic_bp" \
    "south --input south_bp=@graphs/data/south.csv:systolic_bp" "dealer" >>"$log"
  check_ports
done
report "hospital_stats (north, south, dealer)" "$log" "$hospital_runs" 6

digits=graphs/digits_inference.yaml
log="$work/digits.log"
for ((r = 1; r <= digits_runs; r++)); do
  session "$digits" "patient --input input=@tests/fixtures/onnx/digits_sample_image.npy" \
    "clinic --input-dir graphs/data/digits_cnn.weights" "dealer" >>"$log"
  check_ports
done
[ "$digits_runs" -ge 10 ] && report "digits CNN (patient, clinic, dealer)" "$log" "$digits_runs" 6
echo "soak: done"
