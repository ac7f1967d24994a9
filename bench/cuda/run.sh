#!/usr/bin/env bash
# Runs on the GPU machine (no Rust there): vit-rs's CUDA build against PyTorch eager on the
# same GPU, every spec, training at batch 128 and 1024. Build first, on any machine, with
# bench/cuda/build.sh; then copy the repository with target/cuda/vit-runtime to the GPU
# machine and run there:
#
#   bash bench/cuda/run.sh [--steps 20]
#
# The binary loads CUDA 13's cudart/nvrtc/cublas/curand: those of the machine's PyTorch
# wheels (nvidia/*/lib) or of /usr/local/cuda.
set -euo pipefail
cd "$(dirname "$0")/../.."
BINARY=target/cuda/vit-runtime
[ -x "$BINARY" ] || { echo "$BINARY missing: build it with bench/cuda/build.sh and copy it here" >&2; exit 1; }
LIBS=$(python3 - <<'PY'
import glob, os
import nvidia
dirs = sorted({os.path.dirname(p) for base in nvidia.__path__
               for p in glob.glob(os.path.join(base, "**", "lib*.so*"), recursive=True)})
print(":".join(dirs))
PY
)
export LD_LIBRARY_PATH="$LIBS:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
if ldd "$BINARY" | grep "not found"; then
    echo "libraries missing for $BINARY" >&2
    exit 1
fi
for batch in 128 1024; do
    python3 bench/compare.py --device cuda --binary "$BINARY" --train-batch "$batch" \
        --infer-batch 1000 "$@"
done
