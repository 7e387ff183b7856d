#!/usr/bin/env bash
# The checks a lent GPU machine is for, in one run within 8 minutes (the stages' timeouts add up
# to 480 s): the CUDA tests, the speed benchmark of las_base in float32 and bf16 side by side,
# and 300 training steps of las_base in bf16 on a tiny synthetic corpus (the dev CER at their
# end says whether bf16 learns).
#
#   bash benchmarks/gpu_check.sh --fetch-wheels   # here, with the package registries: once
#   bash benchmarks/gpu_check.sh                  # there (device tool: carry [".whl"])
#
# The GPU machine (this workplace's nvidia-h200: Python 3.12, torch 2.11 with CUDA 13, numpy,
# scipy, PyYAML, tqdm, tensorboard, matplotlib, pytest) reaches no registry. --fetch-wheels
# downloads into .whl/ (ignored by git) the pure-Python or manylinux cp312 wheels of what it lacks
# (antlr4 ships only a source archive: built here, it is pure Python),
# at the versions this project's venv holds: hydra-core, omegaconf, antlr4-python3-runtime,
# jiwer, rapidfuzz, click, soundfile, cffi, pycparser, soxr, espeakng-loader (about 30 MB). The
# project itself runs from the working tree (PYTHONPATH), not installed; torch is the machine's.
# Results go to $OUT (the device tool brings them back), else /tmp/gpu_check.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(
    hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3 jiwer==4.0.0
    rapidfuzz==3.14.6 click==8.5.1 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 soxr==1.1.0
    espeakng-loader==0.2.4
)
if [ "${1:-}" = --fetch-wheels ]; then
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    for wheel in "${WHEELS[@]}"; do
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            --platform manylinux1_x86_64 --platform any -d .whl "$wheel" 2>/dev/null \
            || python3 -m pip wheel -q --no-deps -w .whl "$wheel"  # a pure-Python sdist (antlr4)
    done
    du -sh .whl
    exit 0
fi

OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
started=$(date +%s)
stage() { echo; echo "== $1 ($(( $(date +%s) - started )) s)"; }

stage "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 - <<'EOF'
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, device "
      f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}, "
      f"bf16 supported: {torch.cuda.is_available() and torch.cuda.is_bf16_supported()}")
EOF

stage "CUDA tests"
# The tests that run only where CUDA is: the joint search and the pinned-memory loader.
timeout 90 python3 -m pytest -q -p no:cacheprovider -k "cuda or pinned" \
    tests/test_joint_search.py tests/data/test_batching.py tests/test_train.py 2>&1 \
    | tee "$OUT/cuda_tests.txt" | tail -5 || echo "CUDA tests failed or timed out"

stage "speed: las_base, float32 and bf16 in one run"
for precision in fp32 bf16; do
    timeout 75 python3 benchmarks/speed.py --device cuda --model las_base --batch-size 32 \
        --train-steps 10 --precision "$precision" --json "$OUT/speed_$precision.json" \
        || echo "speed.py --precision $precision failed or timed out"
done

stage "training: 300 steps of las_base in bf16 on a tiny corpus"
timeout 60 python3 recipes/synth/prepare.py --out /tmp/synth_tiny --size tiny --seed 0 \
    --workers 8 --engines espeak --unseen-engine none
timeout 180 python3 -m asr.cli train data.corpus_dir=/tmp/synth_tiny model=las_base \
    trainer.precision=bf16 trainer.max_steps=300 trainer.progress_bar=false \
    hydra.run.dir=/tmp/gpu_train 2>&1 | grep -v "^\s*$" | tail -20 | tee "$OUT/train_log.txt" \
    || echo "training failed or timed out"
cp /tmp/gpu_train/summary.json "$OUT/train_summary.json" 2>/dev/null || true
stage "done"
