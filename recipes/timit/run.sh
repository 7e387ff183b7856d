#!/usr/bin/env bash
# TIMIT phone recognition on one GPU: manifests -> training on 61 phones -> checkpoint
# averaging -> beam-search decoding of dev and the core test set, scored on 39 phones (PER).
#   bash recipes/timit/run.sh /data/TIMIT [hydra overrides for training...]
# Environment: DATA (default data/timit), EXP (default exp/timit_las_base), STAGE (first stage
# to run, default 1), AVERAGE (best epochs averaged, default 10; 0: use best.pt).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=${1:?usage: bash recipes/timit/run.sh /path/to/TIMIT [overrides...]}
shift
DATA=${DATA:-data/timit}
EXP=${EXP:-exp/timit_las_base}
STAGE=${STAGE:-1}
AVERAGE=${AVERAGE:-10}

if [ "$STAGE" -le 1 ]; then
  echo "== stage 1: train / dev / core-test manifests ($DATA)"
  python recipes/timit/prepare.py --root "$ROOT" --out "$DATA"
fi
if [ "$STAGE" -le 2 ]; then
  echo "== stage 2: training ($EXP)"
  asr train +experiment=timit_las_base data.corpus_dir="$DATA" hydra.run.dir="$EXP" \
      trainer.resume=true "$@"
fi
MODEL="$EXP/best.pt"
if [ "$AVERAGE" -gt 0 ]; then
  MODEL="$EXP/average_best$AVERAGE.pt"
  if [ "$STAGE" -le 3 ]; then
    echo "== stage 3: averaging the best $AVERAGE epochs"
    asr average "$EXP" --best "$AVERAGE" --out "$MODEL"
  fi
fi
if [ "$STAGE" -le 4 ]; then
  echo "== stage 4: decoding dev and core test, scored on 39 phones ($MODEL)"
  asr evaluate checkpoint="$MODEL" data=timit data.corpus_dir="$DATA" splits='[dev,test]' \
      decoding=beam out_dir="$EXP/eval_beam"
fi
