#!/usr/bin/env bash
# Offline bundle for benchmarks/gpu_check.sh: everything the GPU check needs besides torch, for a
# CUDA machine that has Python, torch, torchvision and the scientific stack but no package index.
#
#   benchmarks/offline_bundle.sh DIR [PYTHON_VERSION]     # default DIR .gpu-bundle, version 3.12
#
# DIR/site holds the packages this project needs that such an image usually lacks (the comparison
# frameworks, kornia, a setuptools new enough to build this project), unpacked from wheels for
# PYTHON_VERSION at the versions installed in .venv; DIR/mnist holds the four MNIST idx files.
# On the CUDA machine: GPU_CHECK_BUNDLE=DIR benchmarks/gpu_check.sh. Run this where the package
# index is reachable, after `make install`.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-.gpu-bundle}
PYVER=${2:-3.12}
PY=.venv/bin/python
PACKAGES=(adversarial-robustness-toolbox foolbox eagerpy GitPython gitdb smmap pyautoattack kornia kornia_rs setuptools
          torchattacks adv-lib cleverhans)

[ -x "$PY" ] || { echo "offline_bundle: no $PY; run 'make install' first" >&2; exit 2; }
pins=()
for name in "${PACKAGES[@]}"; do
    version=$("$PY" -c "import importlib.metadata as m; print(m.version('$name'))") \
        || { echo "offline_bundle: $name is not installed in .venv" >&2; exit 2; }
    pins+=("$name==$version")
done
rm -rf "$OUT" && mkdir -p "$OUT/wheels" "$OUT/site" "$OUT/mnist"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    "${platforms[@]}" -d "$OUT/wheels" "${pins[@]}"
for wheel in "$OUT"/wheels/*.whl; do
    "$PY" -m zipfile -e "$wheel" "$OUT/site"
done
rm -rf "$OUT/wheels" "$OUT/site/pyautoattack/examples"   # 45 MB of example weights the check never loads
mnist=$("$PY" -c 'from robust.data import mnist_dir; print(mnist_dir())')
cp "$mnist"/*-idx*-ubyte.gz "$OUT/mnist/"
du -sh "$OUT"
echo "offline_bundle: ${#pins[@]} packages (${pins[*]}) and MNIST in $OUT"
