#!/usr/bin/env bash
# LibriSpeech on one GPU: manifests -> training -> checkpoint averaging -> beam-search decoding
# and scoring of dev-clean, dev-other, test-clean and test-other.
#   bash recipes/librispeech/run.sh /data/LibriSpeech [hydra overrides for training...]
# Environment: SUBSET (100: train-clean-100 with las_base, the default; 960: all 960 h with
# las_large), DATA (manifest folder, default data/librispeech), EXP (run folder), STAGE (first
# stage to run, default 1), AVERAGE (best epochs averaged, default 10; 0: use best.pt).
# Stages are restartable: training resumes from last.pt.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=${1:?usage: bash recipes/librispeech/run.sh /path/to/LibriSpeech [overrides...]}
shift
SUBSET=${SUBSET:-100}
case "$SUBSET" in
  100) EXPERIMENT=librispeech100_las_base ;;
  960) EXPERIMENT=librispeech960_las_large ;;
  *) echo "SUBSET must be 100 or 960, not $SUBSET" >&2; exit 2 ;;
esac
DATA=${DATA:-data/librispeech}
EXP=${EXP:-exp/$EXPERIMENT}
STAGE=${STAGE:-1}
AVERAGE=${AVERAGE:-10}

if [ "$STAGE" -le 1 ]; then
  echo "== stage 1: manifests of every split found ($DATA)"
  python recipes/librispeech/prepare.py --root "$ROOT" --out "$DATA"
fi
if [ "$STAGE" -le 2 ]; then
  echo "== stage 2: training ($EXP)"
  asr train +experiment="$EXPERIMENT" data.corpus_dir="$DATA" hydra.run.dir="$EXP" \
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
  SPLITS=""
  for split in dev-clean dev-other test-clean test-other; do
    [ -f "$DATA/$split.jsonl" ] && SPLITS="${SPLITS:+$SPLITS,}$split"
  done
  echo "== stage 4: decoding and scoring $SPLITS ($MODEL)"
  asr evaluate checkpoint="$MODEL" data=librispeech data.corpus_dir="$DATA" \
      splits="[$SPLITS]" decoding=beam out_dir="$EXP/eval_beam"
fi
