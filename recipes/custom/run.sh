#!/usr/bin/env bash
# Your own corpus: manifests from Kaldi data directories or tables -> training -> evaluation.
#   bash recipes/custom/run.sh kaldi train=kaldi/data/train dev=kaldi/data/dev test=kaldi/data/test
#   bash recipes/custom/run.sh table train=train.csv dev=dev.csv test=test.csv
# The arguments go to recipes/custom/prepare.py (add --run-commands after `kaldi` to run wav.scp
# command entries, --root DIR for relative wav.scp paths). The split names must include train
# and dev; test is optional.
# Environment: DATA (default data/custom), MODEL (default las_base), ATTENTION (default
# location), EXP (default exp/custom_<model>_<attention>), TRAIN_ARGS (extra hydra overrides
# for training), STAGE (default 1).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
DATA=${DATA:-data/custom}
MODEL=${MODEL:-las_base}
ATTENTION=${ATTENTION:-location}
EXP=${EXP:-exp/custom_${MODEL}_${ATTENTION}}
STAGE=${STAGE:-1}

if [ "$STAGE" -le 1 ]; then
  echo "== stage 1: manifests ($DATA)"
  python recipes/custom/prepare.py --out "$DATA" "$@"
fi
if [ "$STAGE" -le 2 ]; then
  echo "== stage 2: training ($EXP)"
  # shellcheck disable=SC2086
  asr train data=custom data.corpus_dir="$DATA" model="$MODEL" attention="$ATTENTION" \
      hydra.run.dir="$EXP" trainer.resume=true ${TRAIN_ARGS:-}
fi
if [ "$STAGE" -le 3 ]; then
  SPLITS=dev
  [ -f "$DATA/test.jsonl" ] && SPLITS=dev,test
  echo "== stage 3: decoding and scoring $SPLITS"
  asr evaluate checkpoint="$EXP/best.pt" data=custom data.corpus_dir="$DATA" \
      splits="[$SPLITS]" out_dir="$EXP/eval_greedy"
fi
