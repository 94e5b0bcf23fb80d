#!/usr/bin/env bash
# Issue #4's GPU checks in one prepared device call: the GPU inference benchmark (our scorer
# against the seed loop, both on CUDA, tokenisation included) and a GPU fine-tune with its
# epoch times. Never run in CI.
#
#   1. here, once:  bash bench/gpu_session.sh --prepare
#      copies the two labelled files the run needs into .gpu/data (git-ignored; ../shared
#      does not travel to the device machine, and the data must not be committed)
#   2. device tool: run(command="bash bench/gpu_session.sh", carry=[".gpu"], timeout_s=540)
#      results come back from $OUT: gpu.txt, inference.md, train.log, train_metrics.json
#
# The device machine has its own python3 with torch and transformers but not this package,
# so PYTHONPATH points at the checkout. The fine-tune starts from the released model's
# encoder: the bundled base encoder (87 MB in fp32) does not fit the 64 MiB the call
# carries beside the tree; same architecture and size, so the epoch times are the ones a
# fine-tune from the base encoder takes.
set -uo pipefail
cd "$(dirname "$0")/.."

DATA_FILES=(financial_phrasebank/fpb_split.tsv tfns/sent_train.csv)

if [[ "${1:-}" == "--prepare" ]]; then
    set -e
    src="${FINSENT_TRAINING_DATA_DIR:-../shared/data}"
    for f in "${DATA_FILES[@]}"; do
        mkdir -p ".gpu/data/$(dirname "$f")"
        cp "$src/$f" ".gpu/data/$f"
    done
    du -sh .gpu
    exit 0
fi

OUT="${OUT:-/tmp/finsent-gpu-out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
for f in "${DATA_FILES[@]}"; do
    if [[ ! -f ".gpu/data/$f" ]]; then
        echo "gpu_session: .gpu/data/$f is missing: run 'bash bench/gpu_session.sh --prepare' here and carry .gpu" >&2
        exit 2
    fi
done
status=0

{
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
    nproc
    python3 -c 'import torch, transformers, tokenizers; print("torch", torch.__version__, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__, "cuda", torch.cuda.is_available())'
} 2>&1 | tee "$OUT/gpu.txt"

# 1. Inference: 200,000 TFNS texts through our scorer (fp16, batch 1024), 20,000 through the
#    seed loop on the GPU, and the host side alone on this machine's cores (the scorer, and
#    the whole `finsent classify` command with the network stubbed: host-cli).
timeout 240 python3 bench/bench_inference.py --data-dir .gpu/data \
    --methods gpu-seed,gpu,host-seed,host-ours,host-cli --n 20000 --gpu-n 200000 --host-n 200000 \
    2>&1 | tee "$OUT/inference.md" || status=1

# 2. Fine-tune on the GPU: the first release's data mix (FPB x2 + TFNS), 4 epochs, bf16
#    autocast; metrics.json's history has the wall time of every epoch end.
rm -rf /tmp/finsent-gpu-train  # a warm machine may hold an earlier run's checkpoint
timeout 240 python3 -m pipeline.sentiment.train --base-model models/finsent-minilm-v3 \
    --data-dir .gpu/data --source 'fpb-split*2' --source tfns --epochs 4 --lr 1e-4 \
    --layer-decay 0.9 --max-length 64 --seed 42 --no-progress --out /tmp/finsent-gpu-train \
    2>&1 | tee "$OUT/train.log" || status=1
cp /tmp/finsent-gpu-train/metrics.json "$OUT/train_metrics.json" || status=1
echo "gpu_session: done (status $status); files in $OUT"
exit "$status"
