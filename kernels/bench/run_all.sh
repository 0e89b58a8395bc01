#!/usr/bin/env bash
# Runs the kernel microbenchmarks on this machine's GPU and packs the calibration CSVs for return.
# Usage: kernels/bench/run_all.sh [--bin DIR] [--ops "gemm copy ..."] [--work DIR] [--quick]
#   --bin   the carried build of clustersim_kernel_bench (default build-kernels/kernels/bench/bin)
#   --ops   which ops to run (default all, in the order below; attention is attn_prefill,
#           attn_prefill_bwd and attn_decode, through attention_bench.py)
#   --work  where the tables and logs are written (default ./calibration-work, or
#           ./calibration-work-quick with --quick); an op whose CSV is
#           already there is skipped, so calls can be split by op and resumed
# After every op the work folder is packed into $OUT/calibration.tar.gz and its summary copied to
# $OUT/summary.txt (two files: the device tool returns at most eight), so a call stopped at its time limit
# still returns what finished. Without $OUT, nothing is packed.
# Provenance (GPU, driver, CUDA, clocks, date, commit) is read here at run time, never typed in; set
# CLUSTERSIM_COMMIT when the tree is not a git checkout (the device machine's copy has no .git).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/build-kernels/kernels/bench/bin"
work=""
# Attention and the memory-bound ops first: they have no published table to fall back on (the GEMMs have
# OpenXLA's H100 BF16 table and DeepGEMM's H800 FP8 ones, kernels/calibration/README.md), so a session
# whose device time runs out part-way has measured what matters most.
all="attn_prefill attn_prefill_bwd attn_decode rmsnorm silu_mul residual_add rope fp8_quant copy moe_gate moe_topk moe_permute moe_unpermute gemm grouped_gemm"
ops="$all"
quick=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --ops) ops="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --quick) quick="--quick"; shift ;;
    *) echo "unknown argument $1; see the comment at the top of $0" >&2; exit 2 ;;
  esac
done
# A quick smoke run writes elsewhere by default, so its small tables never make a full run skip an op.
[ -z "$work" ] && work="$PWD/calibration-work${quick:+-quick}"
mkdir -p "$work"
summary="$work/summary.txt"
export LD_LIBRARY_PATH="$bin:/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}"
# cuBLASLt may also come from PyTorch's pip wheels (nvidia-cublas) on the GPU machine.
for d in $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, q, "lib") for p in nvidia.__path__ for q in os.listdir(p)))' 2>/dev/null); do
  [ -d "$d" ] && LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
done

commit="${CLUSTERSIM_COMMIT:-$(git -C "$root" rev-parse HEAD 2>/dev/null || echo 'unknown (not a git checkout; set CLUSTERSIM_COMMIT)')}"
header="$work/provenance-header.txt"
q() { nvidia-smi --query-gpu="$1" --format=csv,noheader 2>/dev/null | head -1 || echo unknown; }
{
  echo "# driver: $(q driver_version) (nvidia-smi)"
  echo "# clocks: SM $(q clocks.sm), max SM $(q clocks.max.sm), memory $(q clocks.mem), power limit $(q power.limit) (nvidia-smi at start; clocks left as found)"
  echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# commit: $commit"
} > "$header"
echo "== $(q name), driver $(q driver_version), commit $commit; tables in $work" | tee -a "$summary"

# Packs the work folder into $OUT (when set), replacing the previous pack.
pack() {
  [ -n "${OUT:-}" ] || return 0
  tar -czf "$OUT/calibration.tar.gz.part" -C "$work" . && mv "$OUT/calibration.tar.gz.part" "$OUT/calibration.tar.gz" &&
    cp "$summary" "$OUT/summary.txt"
}

for op in $ops; do
  if [ -s "$work/$op.csv" ]; then echo "== $op: $work/$op.csv exists, skipped" | tee -a "$summary"; continue; fi
  start=$SECONDS
  case "$op" in
    attn_prefill|attn_prefill_bwd|attn_decode)
      PYTHONUNBUFFERED=1 python3 "$here/attention_bench.py" --op "$op" --out "$work/$op.csv" --header "$header" $quick \
        >"$work/$op.log" 2>&1 ;;
    *)
      "$bin/clustersim_kernel_bench" --out "$work" --ops "$op" --header "$header" $quick \
        --benchmark_out="$work/$op.json" --benchmark_out_format=json >"$work/$op.log" 2>&1 ;;
  esac
  rc=$?
  rows=$(grep -v '^#' "$work/$op.csv" 2>/dev/null | tail -n +2 | wc -l)
  skipped=$(grep -c '^skipped' "$work/$op.log" 2>/dev/null)
  echo "== $op: exit $rc, $(( SECONDS - start )) s, $rows rows, ${skipped:-0} shapes skipped" | tee -a "$summary"
  [ "$rc" -ne 0 ] && tail -5 "$work/$op.log" | sed 's/^/   /' | tee -a "$summary"
  # Packed after every op, so a call stopped at its time limit still returns the tables finished so far.
  pack
done
# Once more at the end: a resumed run whose ops were all done already has packed nothing yet.
pack && [ -n "${OUT:-}" ] && echo "== packed $(ls "$work"/*.csv 2>/dev/null | wc -l) tables into \$OUT/calibration.tar.gz"
true
