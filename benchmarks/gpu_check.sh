#!/usr/bin/env bash
# GPU check: on a CUDA machine with nothing but this repository, run the tests marked `cuda` on
# the GPU, then every benchmark with CUDA-sized, short settings. The figures merge into
# benchmarks/results/<device>.json (one section per benchmark) and the whole console output
# goes to benchmarks/results/gpu-check-<device>.log.
#
#   benchmarks/gpu_check.sh            # run it (creates .venv with `make install` if missing)
#   benchmarks/gpu_check.sh --dry-run  # print the steps and their time limits, run nothing
#   GPU_CHECK_STEPS=tests,bench_pgd benchmarks/gpu_check.sh   # only the named steps
#
# Each step has a time limit; a step that fails or runs out of time is reported and the next
# one runs. Exit status: 0 if every step passed, 1 if one did not, 2 if no CUDA device is
# visible or the environment cannot be set up. Set GPU_CHECK_OUT=DIR to copy the JSON and the
# log there at the end.
#
# Offline (a CUDA image with Python and torch but no package index): make a bundle where the
# index is reachable (benchmarks/offline_bundle.sh DIR), bring it along, and run with
# GPU_CHECK_BUNDLE=DIR: the image's python3 (or GPU_CHECK_PYTHON) is used with the bundle's
# packages on PYTHONPATH and its MNIST files, and this project is installed into it, editable,
# without dependencies.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
BUNDLE=${GPU_CHECK_BUNDLE-}
[ -n "$BUNDLE" ] && PY=${GPU_CHECK_PYTHON:-python3}
RESULTS=benchmarks/results
# name | time limit in seconds | command (run from the repository root). The compiled cases come
# last and apart: a cold torch.compile is the longest and least predictable step, and a step
# that runs out of time writes no figures.
STEPS=(
    "tests|90|$PY -m pytest --device cuda -m cuda -q -p no:cacheprovider"
    "bench_autoattack_cnn_at|110|$PY benchmarks/bench_autoattack.py --device cuda --models cnn-at --n 500 --section autoattack-cnn-at"
    "bench_pgd|40|$PY benchmarks/bench_pgd.py --device cuda --quick"
    "bench_precision|40|$PY benchmarks/bench_precision.py --device cuda --no-compile"
    "bench_cascade|40|$PY benchmarks/bench_cascade.py --device cuda"
    "bench_defenses|35|$PY benchmarks/bench_defenses.py --device cuda --quick"
    "bench_minimization|50|$PY benchmarks/bench_minimization.py --device cuda --quick"
    "bench_stream|90|$PY benchmarks/bench_stream.py --device cuda"
    "bench_frameworks|120|$PY benchmarks/bench_frameworks.py --device cuda --models cnn-at --n 500 --batch-size 500"
    "bench_autoattack_resnet_at|120|$PY benchmarks/bench_autoattack.py --device cuda --models resnet-at --n 500 --section autoattack-resnet-at"
    "bench_precision_compile|90|$PY benchmarks/bench_precision.py --device cuda --compile --section precision-compile"
)

die() {
    echo "gpu_check: $*" >&2
    exit 2
}

dry_run() {
    local total=0 step name limit cmd
    for step in "${STEPS[@]}"; do
        IFS='|' read -r name limit cmd <<<"$step"
        printf '%-24s %4ss  %s\n' "$name" "$limit" "$cmd"
        total=$((total + limit))
    done
    echo "at most ${total}s in all, plus setup"
}

# Refuse before installing anything when no GPU can be seen.
preflight() {
    case "${CUDA_VISIBLE_DEVICES-unset}" in
        "" | "-1") die "no CUDA device is visible: CUDA_VISIBLE_DEVICES is '${CUDA_VISIBLE_DEVICES}'" ;;
    esac
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi -L 2>/dev/null | grep -q '^GPU ' \
            || die "no CUDA device is visible: nvidia-smi lists no GPU (is the driver loaded?)"
    elif ! ls /dev/nvidia[0-9]* >/dev/null 2>&1; then
        die "no CUDA device is visible: neither nvidia-smi nor /dev/nvidia* is present"
    fi
}

setup() {
    if [ -n "$BUNDLE" ]; then
        [ -d "$BUNDLE/site" ] && [ -d "$BUNDLE/mnist" ] || die "GPU_CHECK_BUNDLE=$BUNDLE holds no site/ and mnist/ (make it with benchmarks/offline_bundle.sh)"
        export PYTHONPATH="$(cd "$BUNDLE" && pwd)/site${PYTHONPATH:+:$PYTHONPATH}"
        export ROBUST_MNIST_DIR="$(cd "$BUNDLE" && pwd)/mnist"
        "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e . \
            || die "could not install this project into $PY from the bundle"
    elif [ ! -x "$PY" ]; then
        echo "gpu_check: no $PY; creating it with 'make install' (wheels from the package index)"
        make install || die "'make install' failed"
        [ -x "$PY" ] || die "'make install' did not create $PY"
    fi
    "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
        || die "no CUDA device is visible to torch $("$PY" -c 'import torch; print(f"{torch.__version__} (built for CUDA {torch.version.cuda})")' 2>/dev/null)"
}

# Copy the log and the figures to $GPU_CHECK_OUT (after every step, so a run cut short keeps them).
copy_out() {
    [ -n "${GPU_CHECK_OUT-}" ] || return 0
    mkdir -p "$GPU_CHECK_OUT"
    local file
    for file in "$log" "$RESULTS/$slug.json"; do
        [ -f "$file" ] && cp "$file" "$GPU_CHECK_OUT"/
    done
    return 0
}

run_steps() {
    local failed=0 step name limit cmd start rc status summary=()
    echo "gpu_check: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit ${GPU_CHECK_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
    nvidia-smi 2>/dev/null || true
    "$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "CUDA", torch.version.cuda, "torchvision", torchvision.__version__, "device", torch.cuda.get_device_name(0))'
    for step in "${STEPS[@]}"; do
        IFS='|' read -r name limit cmd <<<"$step"
        if [ -n "${GPU_CHECK_STEPS-}" ] && [[ ",$GPU_CHECK_STEPS," != *",$name,"* ]]; then
            continue
        fi
        echo
        echo "=== $name (limit ${limit}s): $cmd"
        start=$SECONDS
        rc=0
        timeout --kill-after=10 "$limit" $cmd || rc=$?
        case $rc in
            0) status=ok ;;
            124 | 137) status="out of time" ;;
            *) status="failed (exit $rc)" ;;
        esac
        [ "$rc" -eq 0 ] || failed=1
        summary+=("$(printf '%-26s %-18s %5ss' "$name" "$status" "$((SECONDS - start))")")
        copy_out
    done
    echo
    echo "=== summary"
    printf '%s\n' "${summary[@]}"
    return $failed
}

case "${1-}" in
    --dry-run) dry_run; exit 0 ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) die "unknown argument '$1' (use --dry-run or --help)" ;;
esac

preflight
setup
slug=$("$PY" -c 'import sys, torch; sys.path.insert(0, "benchmarks"); from common import device_info; print(device_info(torch.device("cuda"))["slug"])') \
    || die "could not name the CUDA device"
mkdir -p "$RESULTS"
log="$RESULTS/gpu-check-$slug.log"
run_steps 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
copy_out
echo "gpu_check: log in $log, figures in $RESULTS/$slug.json"
exit "$rc"
