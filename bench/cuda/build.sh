#!/usr/bin/env bash
# Builds the CUDA binary of vit-runtime on a machine with neither a GPU nor a CUDA install,
# to be copied to a GPU machine (CUDA 13 driver; H100/H200: sm_90 by default).
#
#   bench/cuda/build.sh            -> target/cuda/vit-runtime (stripped, to copy to the GPU machine)
#
# The toolkit comes from the Python package registry (the same CUDA 13 libraries PyTorch
# uses there): nvcc, nvvm and the crt and CCCL headers compile dfdx's kernels; cudart, nvrtc, cublas, curand are linked.
# Two stand-ins make a GPU-less build possible:
#   * `nvidia-smi`: dfdx's build script asks it for the compute capability; ours prints
#     $CUDA_COMPUTE_CAP (default 90);
#   * `libcuda.so`: the driver library ships with the driver, not the toolkit. A stub that
#     defines every driver function cudarc binds (soname libcuda.so.1) satisfies the linker;
#     at run time the real driver's libcuda.so.1 is loaded.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
TOOLKIT=${TOOLKIT:-$ROOT/target/cuda-toolkit}
CAP=${CUDA_COMPUTE_CAP:-90}
CUDA=$TOOLKIT/nvidia/cu13

if [ ! -x "$CUDA/bin/nvcc" ] || [ ! -x "$CUDA/nvvm/bin/cicc" ] ||
    [ ! -f "$CUDA/include/crt/host_config.h" ] || [ ! -d "$CUDA/include/nv" ]; then
    echo "fetching the CUDA 13 toolkit wheels into $TOOLKIT" >&2
    python3 -m pip download --quiet --no-deps -d "$TOOLKIT/wheels" \
        'nvidia-cuda-nvcc==13.*' 'nvidia-cuda-crt==13.*' 'nvidia-nvvm==13.*' \
        'nvidia-cuda-cccl==13.*' 'nvidia-cuda-runtime==13.*' \
        'nvidia-cuda-nvrtc==13.*' 'nvidia-cublas==13.*' 'nvidia-curand'
    for wheel in "$TOOLKIT"/wheels/*.whl; do
        python3 -m zipfile -e "$wheel" "$TOOLKIT"
    done
    chmod +x "$CUDA"/bin/* "$CUDA"/nvvm/bin/*
fi

# The linker looks for unversioned names; the wheels hold only the versioned sonames.
for lib in cudart nvrtc cublas cublasLt curand; do
    versioned=$(cd "$CUDA/lib" && ls "lib$lib.so."* | head -n 1)
    ln -sf "$versioned" "$CUDA/lib/lib$lib.so"
done

CUDARC=$(cargo metadata --format-version 1 --all-features | python3 -c '
import json, sys
meta = json.load(sys.stdin)
print(next(p["manifest_path"] for p in meta["packages"] if p["name"] == "cudarc"))')
CUDARC=$(dirname "$CUDARC")
grep -ohE "pub fn cu[A-Za-z0-9_]+" "$CUDARC/src/driver/sys.rs" | sed 's/^pub fn //' | sort -u |
    sed 's/.*/void &(void) {}/' > "$TOOLKIT/libcuda-stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$CUDA/lib/libcuda.so" "$TOOLKIT/libcuda-stub.c"

mkdir -p "$TOOLKIT/bin"
cat > "$TOOLKIT/bin/nvidia-smi" <<EOF
#!/bin/sh
# Stand-in for dfdx's build script: the compute capability of the target GPU.
echo compute_cap
echo $((CAP / 10)).$((CAP % 10))
EOF
chmod +x "$TOOLKIT/bin/nvidia-smi"

export PATH="$TOOLKIT/bin:$CUDA/bin:$PATH"
export CUDA_ROOT=$CUDA CUDA_COMPUTE_CAP=$CAP
export CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=true
# The binary runs on the GPU machine, not here: not `target-cpu=native` (.cargo/config.toml)
# but a CPU level every x86-64 server of the last decade has (AVX2 + FMA).
export RUSTFLAGS="${RUSTFLAGS:--C target-cpu=x86-64-v3}"
cargo build --release -p vit-runtime --features cuda --target-dir "$ROOT/target/cuda-build"
mkdir -p "$ROOT/target/cuda"
cp "$ROOT/target/cuda-build/release/vit-runtime" "$ROOT/target/cuda/vit-runtime"
ls -l "$ROOT/target/cuda/vit-runtime"
echo "needs at run time:" >&2
readelf -d "$ROOT/target/cuda/vit-runtime" | grep NEEDED >&2
