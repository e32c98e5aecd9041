#!/usr/bin/env bash
# The GPU figures of BENCHMARKS.md in one go, on a machine with a GPU (and, for the peers,
# python3 with JAX and PyTorch on CUDA):
#
#   1. the adapter: `localprop info`; a software adapter (llvmpipe, lavapipe) stops the run;
#   2. optionally, the engine's GPU tests on this GPU (test binaries built elsewhere, --tests);
#   3. `localprop bench --backend auto`: every case on the GPU and the CPU, with the bandwidth
#      each reaches against the copy bandwidth measured in the same run;
#   4. `localprop bench --crossover`: where the GPU overtakes the CPU, against the thresholds
#      of `--backend auto`;
#   5. the peers of benches/peer (JAX, PyTorch eager and CUDA graph) on the same cases, and
#      their check against localprop to 1e-5.
#
# Usage: benches/gpu.sh [--bin PATH] [--out DIR] [--tests DIR] [--seconds S] [--quick]
#                       [--allow-software]
#   --bin PATH        the localprop binary (default target/release/localprop; built with
#                     cargo when missing and cargo exists)
#   --out DIR         where the logs and JSON files go (default out/bench-gpu)
#   --tests DIR       run every executable in DIR with LOCALPROP_REQUIRE_GPU=1: the engine's
#                     GPU test binaries, from `cargo test --release --no-run -p localprop`
#                     (target/release/deps/{gpu,engine,shaders}-*)
#   --seconds S       seconds per case and backend (default 2; the crossover sweep uses half)
#   --quick           the small cases only (a trial of the script, not figures to report)
#   --allow-software  go on with a software adapter (a trial of the script)
#
# Each part runs under a time limit and a failing part does not stop the next; the script
# exits non-zero if any part failed. Files in DIR: log.txt (everything printed),
# tests-NAME.txt (one per test binary), bench.json, crossover.json, peers.json, check.txt.
set -uo pipefail
cd "$(dirname "$0")/.."

bin=target/release/localprop out=out/bench-gpu tests="" seconds=2 quick="" software=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --tests) tests=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --quick) quick=--quick; shift ;;
    --allow-software) software=1; shift ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "benches/gpu.sh: unknown argument $1 (--help lists them)" >&2; exit 2 ;;
  esac
done
if [ ! -x "$bin" ]; then
  if [ "$bin" = target/release/localprop ] && command -v cargo >/dev/null; then
    cargo build --release -p localprop-cli || exit 1
  else
    echo "benches/gpu.sh: no localprop binary at $bin (--bin PATH)" >&2
    exit 2
  fi
fi
mkdir -p "$out"
log="$out/log.txt"
: >"$log"
failed=""
# Mesa's drivers warn on every device creation without it.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

# part NAME LIMIT_S FILE COMMAND...: runs COMMAND under a time limit, its output into the
# log and into FILE (- for none).
part() {
  local name=$1 limit=$2 file=$3 start=$SECONDS
  shift 3
  [ "$file" = - ] && file=/dev/null
  echo "=== $name: $*" | tee -a "$log"
  timeout "$limit" "$@" 2>&1 | tee -a "$log" "$file"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$log"
  [ "$rc" = 0 ] || failed="$failed $name"
  return "$rc"
}

part info 60 - "$bin" info || exit 1
if grep -q "is a software one\|runs on the CPU" "$log"; then
  if [ -z "$software" ]; then
    echo "benches/gpu.sh: no hardware GPU adapter (above); --allow-software to go on" | tee -a "$log" >&2
    exit 1
  fi
  export WGPU_ADAPTER_NAME="${WGPU_ADAPTER_NAME:-llvmpipe}"
fi
command -v nvidia-smi >/dev/null && part nvidia-smi 30 - nvidia-smi

if [ -n "$tests" ]; then
  for t in "$tests"/*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    LOCALPROP_REQUIRE_GPU=1 part "tests-$(basename "$t")" 300 "$out/tests-$(basename "$t").txt" "$t"
  done
fi

part bench 400 - "$bin" bench --backend auto --seconds "$seconds" $quick --json "$out/bench.json"
half=$(awk -v s="$seconds" 'BEGIN { print s / 2 }')
part crossover 300 - "$bin" bench --crossover --seconds "$half" $quick --json "$out/crossover.json"

if python3 -c "import numpy" 2>/dev/null; then
  peers=jax,torch-eager,torch-cuda-graph
  python3 -c "import jax, torch" 2>/dev/null || peers=numpy
  part peers 400 - python3 benches/peer/bench.py --peers "$peers" $quick --json "$out/peers.json"
  part check 300 "$out/check.txt" python3 benches/peer/check.py --peers "$peers" --localprop "$bin"
else
  echo "=== peers: skipped, python3 has no numpy (benches/peer/requirements.txt)" | tee -a "$log"
fi

if [ -n "$failed" ]; then
  echo "benches/gpu.sh: failed:$failed (see $log)" | tee -a "$log" >&2
  exit 1
fi
echo "benches/gpu.sh: done; $out holds the logs and JSON files" | tee -a "$log"
