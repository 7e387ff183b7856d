#!/usr/bin/env bash
# The default recipe: synthesize a corpus, train LAS, decode the held-out test split, score it.
#   bash recipes/synth/run.sh [hydra overrides for training...]
# Environment: SIZE (tiny|small|medium|large, default small), MODEL (default las_small),
# ATTENTION (a conf/attention name, default location), SEED (default 0), WORKERS (synthesis
# processes, default 2). The run goes to exp/synth_<size>_<model>_<attention>.
# Each stage is cached: rerunning reuses the corpus and continues training from last.pt.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${SIZE:-small}
MODEL=${MODEL:-las_small}
ATTENTION=${ATTENTION:-location}
SEED=${SEED:-0}
CORPUS=data/synth_${SIZE}_seed${SEED}
EXP=exp/synth_${SIZE}_${MODEL}_${ATTENTION}

echo "== stage 1: corpus ($CORPUS)"
python recipes/synth/prepare.py --out "$CORPUS" --size "$SIZE" --seed "$SEED" --workers "${WORKERS:-2}"

echo "== stage 2: training ($EXP)"
asr train data.corpus_dir="$CORPUS" model="$MODEL" attention="$ATTENTION" seed="$SEED" \
    hydra.run.dir="$EXP" trainer.resume=true "$@"

echo "== stage 3: decoding and scoring the test split"
# Beam search (10 beams): measured on dev with a las_small checkpoint, WER 18.2% against
# 26.4% greedy, for 3x greedy's decoding time (RTF 0.008 against 0.0025 on 2 cores).
asr evaluate checkpoint="$EXP/best.pt" data.corpus_dir="$CORPUS" splits='[dev,test]' \
    decoding=beam out_dir="$EXP/eval_beam"

python - "$CORPUS" "$EXP" <<'PY'
import json, sys
from pathlib import Path
corpus, exp = Path(sys.argv[1]), Path(sys.argv[2])
summary = json.loads((corpus / "corpus.json").read_text())
train = json.loads((exp / "summary.json").read_text())
results = json.loads((exp / "eval_beam" / "results.json").read_text())
table = {
    "corpus": str(corpus),
    "test_oov_word_rate": summary.get("test_oov_rate"),
    "train_minutes": round(train["train_minutes"], 1),
    "epochs": len(train["epochs"]),
    "results": {r["split"]: {"wer": r["wer"], "cer": r["cer"], "rtf": r["real_time_factor"]}
                for r in results},
}
(exp / "results.json").write_text(json.dumps(table, indent=2))
print(f"\ntraining: {table['train_minutes']} min, {table['epochs']} epochs; "
      f"test OOV word rate {table['test_oov_word_rate']}")
print(f"results written to {exp / 'results.json'}")
PY
