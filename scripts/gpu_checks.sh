#!/bin/bash
# One call on a lent GPU machine (bare image: PyTorch, transformers, OpenCV, no diffusers, no
# pydantic, no spaCy; nothing can be fetched there): the full-size cost benchmarks (ZeroScope,
# AnimateDiff), the pipelines' offloading, then shapes training on the GPU. What it writes under
# $OUT comes back.
#
# Here, before the call (the wheels the image lacks, about 9 MB, for its Python 3.12):
#   echo /.whl/ >> .git/info/exclude
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
#     diffusers==0.42.1 pydantic==2.14.3 pydantic-core==2.50.4 annotated-types \
#     typing-inspection importlib-metadata
# Then: run(command="bash scripts/gpu_checks.sh", carry=[".whl"], timeout_s=590).
# Back here: the motion round's candidate comes back as $OUT/unet.safetensors,
# $OUT/text_encoder.safetensors, training.json and train_log.jsonl. Put them in a copy of
# assets/shapes (its config files and tokenizer with the candidate's training.json), score it
# with `shapes_eval.py --single --model DIR` and the two-subject benchmark, and replace
# assets/shapes only if it wins (the optimizer state stays on the device and is lost).
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"

# Full size, random weights (time and memory do not depend on them); bf16, since random fp16
# weights can overflow and a skipped update would make guidance look cheap.
timeout 300 python3 benchmarks/guidance_cost.py --backbone zeroscope --random-weights \
  --device cuda --dtype bfloat16 --parsed benchmarks/data/cost_prompt_parse.json \
  --modes guided --repeats 1 --json 2>&1 | tee "$OUT/cost_zeroscope.jsonl"
# AnimateDiff (SD 1.5 + motion adapter v1-5-2) at its defaults, 512x512x16, with checkpointing
# (the registry's default; without it a gradient iteration keeps 32.7 GiB, sized on the meta
# device): time and peak memory of a guided run on the card.
timeout 240 python3 benchmarks/guidance_cost.py --backbone animatediff --random-weights \
  --device cuda --dtype bfloat16 --parsed benchmarks/data/cost_prompt_parse.json \
  --modes guided --repeats 1 --json 2>&1 | tee "$OUT/cost_animatediff.jsonl"
# The pipelines' model offloading and VAE slicing on a real accelerator (the CPU tests can only
# run accelerate's hooks with the CPU as the accelerator).
timeout 60 python3 scripts/gpu_pipeline_check.py 2>&1 | tee "$OUT/pipeline_check.jsonl"

# Batch + evaluate on the GPU, for the day the image has what they need (spaCy with an English
# model, accelerate, tqdm, imageio-ffmpeg: too large for .whl today, so this step says it is
# skipped and costs nothing): a shapes suite on the shipped model, scored exactly; then,
# when ZeroScope and OWL-ViT weights are in the image's Hugging Face cache, four LVD prompts
# scored by the detector. One process per GPU (accelerate launch; a plain run on one GPU).
# When it runs, lower TRAIN_MINUTES to stay inside the call's 590 s.
if python3 -c "import accelerate, tqdm, imageio_ffmpeg; import starvid.parsing as p; p.load_nlp()" \
  2>/dev/null; then
  GPUS=$(nvidia-smi -L | wc -l)
  LAUNCH=(python3 -m starvid)
  [ "$GPUS" -gt 1 ] && LAUNCH=(python3 -m accelerate.commands.launch --multi_gpu \
    --num_processes "$GPUS" -m starvid)
  python3 -m starvid suite shapes --n 16 --out /tmp/shapes.jsonl
  timeout 120 "${LAUNCH[@]}" batch /tmp/shapes.jsonl --out /tmp/batch-shapes --baseline \
    --seeds 2 2>&1 | tail -3
  python3 -m starvid evaluate /tmp/batch-shapes --scorer shapes --plot "$OUT/batch_shapes.png"
  cp /tmp/batch-shapes/evaluation.md "$OUT/batch_shapes.md"
  cp /tmp/batch-shapes/manifest.json "$OUT/batch_shapes_manifest.json"
  if python3 -m starvid backbones --json | python3 -c "import json, sys; sys.exit(not any(
      b['name'] == 'zeroscope' and b['available_offline'] for b in json.load(sys.stdin)))"; then
    python3 -m starvid suite lvd --n 4 --out /tmp/lvd.jsonl
    timeout 240 "${LAUNCH[@]}" batch /tmp/lvd.jsonl --out /tmp/batch-lvd --backbone zeroscope \
      --baseline 2>&1 | tail -3
    python3 -m starvid evaluate /tmp/batch-lvd --scorer detector --device cuda \
      --plot "$OUT/batch_lvd.png" && cp /tmp/batch-lvd/evaluation.md "$OUT/batch_lvd.md"
  else
    echo "batch on zeroscope skipped: its weights are not in this image's cache"
  fi
else
  echo "batch + evaluate skipped: spaCy's English model, accelerate, tqdm or imageio-ffmpeg missing"
fi

# Shapes training for the motion round (issue 15), from scratch into runs/shapes-motion (the
# shipped model is left alone): frame positions in the temporal attention from the first step,
# a frame-difference loss, half the timesteps from the noisiest 40 %, a curriculum toward single
# subjects and small counts. Why from scratch: on the CPU, 1,703 warm-start steps from the
# shipped weights left unguided single-subject motion at chance, while a small model trained
# from scratch this way on single subjects reached 50 % after 4,287 steps (shapes_eval
# --single, 48 videos; the shipped model 2 %; assets/shapes/README.md). The stop test is that
# --single figure, not motion_drift_px (it stayed near 0 for both). The world is drawn on the CPU in the
# training process (about 0.1 s a video): a round long enough to matter wants a data-loading
# worker pool first.
timeout $((60 * ${TRAIN_MINUTES:-4} + 60)) python3 -m starvid.shapes.train --device cuda \
  --from-scratch --out runs/shapes-motion --state /tmp/state.safetensors \
  --max-minutes "${TRAIN_MINUTES:-4}" --batch "${BATCH:-32}" --lr "${LR:-8e-4}" \
  --anneal-to "${ANNEAL_TO:-4e-5}" --ema 0.995 \
  --frame-positions --temporal-weight 4 --high-noise-share 0.5 \
  --kind-weights 0.5,0.35,0.15 --count-weights 0.45,0.3,0.15,0.1 \
  --motion-weights 1,1,1,1,1,0.5 > "$OUT/train.out" 2>&1
tail -3 "$OUT/train.out"
cp runs/shapes-motion/unet/diffusion_pytorch_model.safetensors "$OUT/unet.safetensors"
cp runs/shapes-motion/text_encoder/model.safetensors "$OUT/text_encoder.safetensors"
cp runs/shapes-motion/training.json runs/shapes-motion/train_log.jsonl "$OUT/"
