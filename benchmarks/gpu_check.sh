#!/usr/bin/env bash
# GPU check for clusterg: one prepared run on a machine with a CUDA GPU, sized for ~10 minutes.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # default OUT_DIR: $OUT, else ./gpu_check_out
#
# 1. installs clusterg (editable) and faiss with GPU support (PyPI: faiss-gpu-cu12) into the
#    active Python, unless faiss already sees a GPU;
# 2. runs the kNN tests with CUDA visible (tests/test_knn.py, tests/test_knn_gemm.py);
# 3. on synthetic MS1M-like 584,013 x 256 (clusterg synth, seed 1): exact kNN (k=80) through
#    clusterg (device=cuda) and through raw faiss-gpu IndexFlatIP on the same array, then
#    approximate (clusterg ivf on cuda, and raw faiss-gpu IndexIVFFlat with the same nlist/nprobe),
#    recall@80 on 2,000 queries;
# 4. the default pipeline (`clusterg cluster`, method auto, --device cuda) at 584K with scores;
# 5. writes OUT_DIR/gpu_check.json: GPU name, times per step, ratios, recalls, exit codes.
#
# Goals it reports against (issue "MS1M scale"): exact kNN at 584K within 1.2x of raw faiss-gpu;
# 584K end to end <= 60 s. Nothing here needs the network after step 1.
set -uo pipefail
OUT_DIR="${1:-${OUT:-gpu_check_out}}"
mkdir -p "$OUT_DIR"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"
LOG="$OUT_DIR/gpu_check.log"
: > "$LOG"
say() { echo "[gpu_check $(date +%T)] $*" | tee -a "$LOG"; }

PY="${PYTHON:-python3}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT_DIR/gpu.txt" 2>&1 || true
say "GPU: $(cat "$OUT_DIR/gpu.txt")"

t0=$(date +%s)
if ! "$PY" -c "import faiss, sys; sys.exit(0 if faiss.get_num_gpus() > 0 else 1)" 2>/dev/null; then
  say "installing clusterg and faiss-gpu-cu12"
  "$PY" -m pip install -q -e . >> "$LOG" 2>&1 || say "pip install -e . failed"
  "$PY" -m pip uninstall -q -y faiss-cpu >> "$LOG" 2>&1 || true
  if ! "$PY" -m pip install -q faiss-gpu-cu12 >> "$LOG" 2>&1; then
    say "pip install faiss-gpu-cu12 failed; putting faiss-cpu back"
    "$PY" -m pip install -q faiss-cpu >> "$LOG" 2>&1 || true
  fi
fi
install_s=$(( $(date +%s) - t0 ))

t0=$(date +%s)
timeout 240 "$PY" -m pytest -q -x -p no:cacheprovider tests/test_knn.py tests/test_knn_gemm.py \
  > "$OUT_DIR/pytest.log" 2>&1
tests_rc=$?
tests_s=$(( $(date +%s) - t0 ))
say "tests rc=$tests_rc in ${tests_s}s"

DATA="$OUT_DIR/synth584k"
t0=$(date +%s)
timeout 120 "$PY" -m clusterg synth --n 584013 --dim 256 --seed 1 --split part1_test -o "$DATA" -q --json \
  > "$OUT_DIR/synth.json" 2>> "$LOG"
synth_rc=$?
synth_s=$(( $(date +%s) - t0 ))
say "synth rc=$synth_rc in ${synth_s}s"

timeout 300 "$PY" - "$DATA" "$OUT_DIR" > "$OUT_DIR/knn.json" 2>> "$LOG" <<'EOF'
import json, sys, time
import numpy as np, faiss
from clusterg.knn import knn_search, knn_recall
data, out = sys.argv[1], sys.argv[2]
x = np.fromfile(f"{data}/features/part1_test.bin", dtype="<f4").reshape(-1, 256)
xn = np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True))
k, res = 80, {}
def timed(f):
    t = time.perf_counter(); r = f(); return r, time.perf_counter() - t
def raw_flat():
    gr = faiss.StandardGpuResources()
    idx = faiss.index_cpu_to_gpu(gr, 0, faiss.IndexFlatIP(256)); idx.add(xn)
    return idx.search(xn, k)
def raw_ivf(nlist, nprobe):
    gr = faiss.StandardGpuResources()
    cpu = faiss.IndexIVFFlat(faiss.IndexFlatIP(256), 256, nlist, faiss.METRIC_INNER_PRODUCT)
    idx = faiss.index_cpu_to_gpu(gr, 0, cpu)
    idx.train(xn[np.random.default_rng(0).choice(len(xn), 64 * nlist, replace=False)]); idx.add(xn)
    idx.nprobe = nprobe
    return idx.search(xn, k)
raw_flat()  # warm-up: CUDA context, cuBLAS handles
(fd, fi), res["raw_faiss_gpu_flat_s"] = timed(raw_flat)
(cn, cs), res["clusterg_flat_cuda_s"] = timed(lambda: knn_search(x, k, method="flat", device="cuda", quiet=True))
res["exact_ratio"] = res["clusterg_flat_cuda_s"] / res["raw_faiss_gpu_flat_s"]
rows = np.sort(np.random.default_rng(1).choice(len(x), 2000, replace=False))
res["clusterg_flat_recall"] = knn_recall(cn[rows], fi[rows])
nlist = int(4 * np.sqrt(len(x)))
(ad, ai), res["raw_faiss_gpu_ivf_s"] = timed(lambda: raw_ivf(nlist, 32))
(an, _), res["clusterg_ivf_cuda_s"] = timed(lambda: knn_search(x, k, method="ivf", device="cuda", quiet=True))
res["ivf_ratio"] = res["clusterg_ivf_cuda_s"] / res["raw_faiss_gpu_ivf_s"]
res["raw_faiss_gpu_ivf_recall"] = knn_recall(ai[rows], fi[rows])
res["clusterg_ivf_cuda_recall"] = knn_recall(an[rows], fi[rows])
res.update(n=len(x), d=256, k=k, nlist=nlist, nprobe=32)
print(json.dumps(res))
EOF
knn_rc=$?
say "knn rc=$knn_rc: $(cat "$OUT_DIR/knn.json")"

t0=$(date +%s)
timeout 240 "$PY" -m clusterg cluster "$DATA/features/part1_test.bin" --dim 256 --device cuda \
  --labels "$DATA/labels/part1_test.meta" -o "$OUT_DIR/pred584k.txt" --json -q > "$OUT_DIR/pipeline.json" 2>> "$LOG"
pipe_rc=$?
pipe_s=$(( $(date +%s) - t0 ))
say "pipeline rc=$pipe_rc in ${pipe_s}s: $(cat "$OUT_DIR/pipeline.json")"

"$PY" - "$OUT_DIR" <<EOF
import json, sys
out = sys.argv[1]
def load(name):
    try:
        return json.load(open(f"{out}/{name}"))
    except Exception as e:
        return {"error": str(e)}
r = dict(gpu=open(f"{out}/gpu.txt").read().strip(), install_s=$install_s, tests_rc=$tests_rc, tests_s=$tests_s,
         synth_rc=$synth_rc, synth_s=$synth_s, knn_rc=$knn_rc, knn=load("knn.json"), pipeline_rc=$pipe_rc,
         pipeline_wall_s=$pipe_s, pipeline=load("pipeline.json"),
         goals=dict(exact_within_1_2x_of_faiss_gpu="see knn.exact_ratio", end_to_end_584k_le_60s="see pipeline_wall_s"))
json.dump(r, open(f"{out}/gpu_check.json", "w"), indent=1)
print(json.dumps(r, indent=1))
EOF
rm -rf "$DATA"  # 600 MB of synthetic features; regenerated by the same command
