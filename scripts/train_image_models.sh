#!/usr/bin/env bash
# The training runs behind the shipped image models and the plain-vs-residual comparison,
# launched side by side on one GPU under JAX (`toolkit train images` runs unchanged on any
# Keras backend; the run folders' best.keras load into TensorFlow for export).
#
#   scripts/train_image_models.sh RUNS_DIR DATA_DIR [TIME_LIMIT_SECONDS]
#
# DATA_DIR holds cifar10/ and fashion-mnist/ as ../shared/data does. Each run is checkpointed
# every epoch: re-running the same command resumes it.
set -uo pipefail
runs=${1:?RUNS_DIR}; data=${2:?DATA_DIR}; limit=${3:-100000}
export KERAS_BACKEND=${KERAS_BACKEND:-jax} XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
mkdir -p "$runs"
toolkit=(python3 -m cli.main train images)
c10=(--dataset cifar10 --data-dir "$data/cifar10")

# Decode the JPEGs once into the cache, so the parallel runs don't all do it.
python3 -c "from toolkit.data import images; images.load('cifar10', '$data/cifar10')"

launch() { name=$1; shift; timeout "$limit" "${toolkit[@]}" "$@" --out "$runs/$name" >"$runs/$name.log" 2>&1 & }
launch cifar10_resnet20w32 "${c10[@]}" --arch resnet20 --width 32 --epochs 50
launch cifar10_resnet56 "${c10[@]}" --arch resnet56 --epochs 50
launch fashion_mnist_resnet20w32 --dataset fashion_mnist --data-dir "$data/fashion-mnist" --arch resnet20 --width 32 \
    --translate 2 --epochs 30
for arch in plain20 resnet20 plain56 resnet56; do
  launch "compare_$arch" "${c10[@]}" --arch "$arch" --epochs 12
done
wait
tail -n 2 "$runs"/*.log
