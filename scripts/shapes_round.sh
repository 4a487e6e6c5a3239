#!/usr/bin/env bash
# One round of the shapes model's from-scratch training (issue 23), in the background, resumable.
#
#   bash scripts/shapes_round.sh [MINUTES] [THREADS]      # default: 120 minutes, 1 thread
#
# The round's state (raw and EMA weights, AdamW moments, step) is training/shapes-r7/state.safetensors
# and its EMA model, log and preview grid are in training/shapes-r7/model; both are committed at
# the end of a session, so the next session's call continues the same run (same step count, EMA
# and optimizer, the batch stream seeded by the step). The first call starts from scratch. The
# recipe lives here so that every round of the run uses the same one; the model card
# (assets/shapes/README.md) records each round. The recipe below is the last stage's (session
# 11: the drift loss, more high-noise timesteps, the four directions weighted). Stop a round
# early with `kill -TERM PID`: it saves first. Output goes to training/shapes-r7/train.out.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-120}
threads=${2:-1}
dir=training/shapes-r7
mkdir -p "$dir"
start=()
[ -f "$dir/state.safetensors" ] || start=(--from-scratch)
export HF_HUB_OFFLINE=1
nohup "${PYTHON:-python}" -m starvid.shapes.train "${start[@]}" \
  --channels 32 48 --frame-positions --batch 8 --lr 8e-4 --ema 0.999 \
  --temporal-weight 4 --drift-weight 100 --high-noise-share 0.6 \
  --kind-weights 0.7,0.2,0.1 --count-weights 0.6,0.2,0.1,0.1 --motion-weights 1,1,1,1,0.4,0.4 \
  --threads "$threads" --max-minutes "$minutes" --save-minutes 4 --sample-every 1000 --compile \
  --out "$dir/model" --state "$dir/state.safetensors" ${EXTRA:-} >> "$dir/train.out" 2>&1 &
echo "shapes round started (pid $!): $minutes minutes, $threads thread(s); log: $dir/train.out"
