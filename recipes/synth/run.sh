#!/usr/bin/env bash
# The default recipe: synthesize a corpus, train LAS, a character and a word language model,
# decode dev and test four ways with the same checkpoint (attention only, +CTC, +CTC+character
# LM, +CTC+word LM), score them.
#   bash recipes/synth/run.sh [hydra overrides for training...]
# Environment: SIZE (tiny|small|medium|large, default small), MODEL (default las_small),
# ATTENTION (a conf/attention name, default location), SEED (default 0), WORKERS (synthesis
# processes, default 2), LM_MODEL (a conf/language_model name, default char_lstm_small),
# CTC_WEIGHT, LM_WEIGHT, LENGTH_BONUS (the joint search's λ, β and length bonus), WORD_LM_MODEL
# (default word_lstm_small), WORD_LM_WEIGHT and OOV_PENALTY (the word LM's β and its
# decoding.oov_penalty), ENGINES (the
# corpus's engines, default espeak; e.g. espeak,piper), UNSEEN_ENGINE (the engine of the
# test_unseen_engine split: auto picks flite, else piper, when installed and not training;
# none: no such split), AUGMENT (a conf/augment name, default default; acoustic adds rooms,
# babble, telephone and DC).
# The runs go to exp/synth_<size>_<model>_<attention>, exp/lm_synth_<size>_<lm_model> and
# exp/lm_synth_<size>_<word_lm_model>_joined.
# Each stage is cached: rerunning reuses the corpus and continues training from the last save.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${SIZE:-small}
MODEL=${MODEL:-las_small}
ATTENTION=${ATTENTION:-location}
SEED=${SEED:-0}
LM_MODEL=${LM_MODEL:-char_lstm_small}
# λ (CTC weight), β (LM weight) and the length bonus of the joint CTC/attention + LM search,
# chosen on dev (never test) by recipes/synth/sweep_decoding.sh (26 jobs, 2026-12-02; the
# table is in recipes/synth/README.md).
CTC_WEIGHT=${CTC_WEIGHT:-0.3}
LM_WEIGHT=${LM_WEIGHT:-0.4}
LENGTH_BONUS=${LENGTH_BONUS:-0.0}
# The word LM's β and OOV penalty, chosen on dev the same way (14 jobs, 2026-12-03: dev WER
# 9.95% at β 0.5 against 11.42% at 0.3 and 11.30% at 0.8; -23.03 and -40 tie, -10 is worse).
WORD_LM_MODEL=${WORD_LM_MODEL:-word_lstm_small}
WORD_LM_WEIGHT=${WORD_LM_WEIGHT:-0.5}
OOV_PENALTY=${OOV_PENALTY:--23.03}
ENGINES=${ENGINES:-espeak}
UNSEEN_ENGINE=${UNSEEN_ENGINE:-auto}
AUGMENT=${AUGMENT:-default}
# Corpora and runs with other engines or augmentation get their own folders.
SUFFIX=$([ "$ENGINES" = espeak ] || echo "_${ENGINES//,/_}")
CORPUS=data/synth_${SIZE}_seed${SEED}${SUFFIX}
EXP=exp/synth_${SIZE}_${MODEL}_${ATTENTION}${SUFFIX}$([ "$AUGMENT" = default ] || echo "_$AUGMENT")
LM_EXP=exp/lm_synth_${SIZE}_${LM_MODEL}
WORD_LM_EXP=exp/lm_synth_${SIZE}_${WORD_LM_MODEL}_joined

echo "== stage 1: corpus ($CORPUS)"
python recipes/synth/prepare.py --out "$CORPUS" --size "$SIZE" --seed "$SEED" --workers "${WORKERS:-2}" \
    --engines "$ENGINES" --unseen-engine "$UNSEEN_ENGINE"
SPLITS=dev,test
if [ -f "$CORPUS/test_unseen_engine.jsonl" ] && [ "$UNSEEN_ENGINE" != none ]; then
    SPLITS=dev,test,test_unseen_engine  # voices of an engine training never heard
fi

echo "== stage 2: training ($EXP)"
asr train data.corpus_dir="$CORPUS" model="$MODEL" attention="$ATTENTION" seed="$SEED" \
    augment="$AUGMENT" hydra.run.dir="$EXP" trainer.resume=true "$@"

echo "== stage 3: language model on the training transcripts ($LM_EXP)"
# The training split's text only (text.train defaults to data.train_manifest); dev perplexity
# chooses best.pt.
asr train-lm data.corpus_dir="$CORPUS" language_model="$LM_MODEL" seed="$SEED" \
    hydra.run.dir="$LM_EXP" trainer.resume=true

echo "== stage 3b: word language model on the training transcripts, some joined ($WORD_LM_EXP)"
# Their words (2840 in the small corpus), through a prefix tree at decoding time
# (asr.models.word_lookahead). The text: the training transcripts, then 1500 lines of 2-3 of
# them joined (recipes/synth/lm_text.py), so that the LM has seen one sentence follow another.
# Chosen on dev (2026-12-04, recipes/synth/README.md "Long input"): dev WER 9.21% one by one
# and 12.35% on 3 utterances joined, against 9.79% and 19.39% for the transcripts alone; 6000
# joined lines: 9.91% and 12.31%. Batches of 1024 words: 96 steps an epoch.
LM_TEXT="$CORPUS/lm_train.txt"
python recipes/synth/lm_text.py "$CORPUS/train.jsonl" "$LM_TEXT" --joined 1500 --seed "$SEED"
asr train-lm data.corpus_dir="$CORPUS" language_model="$WORD_LM_MODEL" text.unit=word \
    "text.train=[$LM_TEXT]" text.max_batch_tokens=1024 trainer.max_epochs=10 seed="$SEED" \
    hydra.run.dir="$WORD_LM_EXP" trainer.resume=true

echo "== stage 4: decoding and scoring $SPLITS four ways"
# Beam search (10 beams): measured on dev with a las_small checkpoint, WER 18.2% against
# 26.4% greedy, for 3x greedy's decoding time (RTF 0.008 against 0.0025 on 2 cores).
EVAL=(asr evaluate checkpoint="$EXP/best.pt" data.corpus_dir="$CORPUS" "splits=[$SPLITS]"
    decoding=beam)
"${EVAL[@]}" decoding.ctc_weight=0.0 decoding.lm_weight=0.0 out_dir="$EXP/eval_beam"
"${EVAL[@]}" decoding.ctc_weight="$CTC_WEIGHT" decoding.lm_weight=0.0 \
    out_dir="$EXP/eval_beam_ctc"
"${EVAL[@]}" decoding.ctc_weight="$CTC_WEIGHT" decoding.lm_weight="$LM_WEIGHT" \
    decoding.length_bonus="$LENGTH_BONUS" lm="$LM_EXP/best.pt" out_dir="$EXP/eval_beam_ctc_lm"
"${EVAL[@]}" decoding.ctc_weight="$CTC_WEIGHT" decoding.lm_weight="$WORD_LM_WEIGHT" \
    decoding.oov_penalty="$OOV_PENALTY" lm="$WORD_LM_EXP/best.pt" \
    out_dir="$EXP/eval_beam_ctc_wordlm"

python recipes/synth/compare_decodings.py "$CORPUS" "$EXP" "$LM_EXP" "$WORD_LM_EXP"
