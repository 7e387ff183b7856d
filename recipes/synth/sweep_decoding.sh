#!/usr/bin/env bash
# Choose the joint search's weights on DEV (never test): a Hydra multirun of `asr evaluate` over
# λ (decoding.ctc_weight), β (decoding.lm_weight) and the length bonus, then a table sorted by
# dev WER with the best settings named (recipes/synth/summarize_sweep.py).
#   bash recipes/synth/sweep_decoding.sh CHECKPOINT LM [hydra overrides for evaluate...]
# LM: a language model checkpoint (asr train-lm's best.pt), or "none" (β stays 0).
# Environment: CORPUS (default data/synth_small_seed0); GRID=small (default, 2x2x2 jobs) or
# wide (3x3x3); CTC_WEIGHTS, LM_WEIGHTS, LENGTH_BONUSES (comma-separated) replace a grid's
# list; OUT (default: <checkpoint's folder>/sweep_decoding).
# Writes OUT/<job>/results.json per job, OUT/sweep.md and OUT/best.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
CHECKPOINT=${1:?usage: sweep_decoding.sh CHECKPOINT LM|none [overrides...]}
LM=${2:?usage: sweep_decoding.sh CHECKPOINT LM|none [overrides...]}
shift 2
for arg in "$@"; do
    case $arg in
        splits=*|*.splits=*) echo "sweep_decoding.sh: the sweep scores dev only; no $arg" >&2; exit 2 ;;
    esac
done
case ${GRID:-small} in
    small) ctc=0.3,0.5 lm=0.2,0.4 bonus=0.0,1.0 ;;
    wide) ctc=0.0,0.3,0.5 lm=0.0,0.2,0.4 bonus=0.0,0.5,1.0 ;;
    *) echo "sweep_decoding.sh: GRID must be small or wide, not ${GRID}" >&2; exit 2 ;;
esac
CORPUS=${CORPUS:-data/synth_small_seed0}
OUT=${OUT:-$(dirname "$CHECKPOINT")/sweep_decoding}
LM_ARGS=(lm="$LM" decoding.lm_weight="${LM_WEIGHTS:-$lm}")
if [ "$LM" = none ]; then
    LM_ARGS=(decoding.lm_weight=0.0)
fi

asr evaluate -m checkpoint="$CHECKPOINT" data.corpus_dir="$CORPUS" 'splits=[dev]' decoding=beam \
    decoding.ctc_weight="${CTC_WEIGHTS:-$ctc}" "${LM_ARGS[@]}" \
    decoding.length_bonus="${LENGTH_BONUSES:-$bonus}" hydra.sweep.dir="$OUT" "$@"
python recipes/synth/summarize_sweep.py "$OUT" --split dev
