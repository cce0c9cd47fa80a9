# shellcheck shell=bash
# Shared by the multi-process checks (dist_checks.sh, two_machines_check.sh); sourced, not run.
# Expects $evit, $tests and $work to be set.

# Open MPI in containers, as root: allow root, no cross-process memory attach (often forbidden by
# the container's ptrace policy), the ob1 messaging layer, processes not pinned to cores, and
# waiting ranks yield the CPU to the others.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_pml=ob1 OMPI_MCA_mpi_yield_when_idle=1

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo; echo "== $*"; }

# Writes the image folders of $work/data and the classification config $work/config.json:
# EfficientViT-B0 at 64 px, global batch 8 in 4 micro-batches, 3 steps with drop path, mixup,
# cutmix, RandAugment and EMA, evaluated (sharded over the ranks) after the last one.
write_b0_config() {
  EVIT_DIST_DATA="$work/data" "$tests" "[dist_data]" > /dev/null
  cat > "$work/config.json" <<JSON
{
  "task": "classification",
  "model": {"name": "efficientvit-b0"},
  "data": {"root": "$work/data", "dataset": "imagenet", "crop": 64, "batch_size": 8, "micro_batches": 4,
           "workers": 1},
  "optimizer": {"lr": 0.002, "weight_decay": 0.05},
  "schedule": {"warmup_steps": 0, "total_steps": 3},
  "ema": {"enabled": true, "decay": 0.9, "warmup_steps": 0},
  "train": {"steps": 3, "threads": 1, "drop_path": 0.2, "mixup_alpha": 0.8, "cutmix_alpha": 1.0,
            "rand_augment": "rand-n2-m9-mstd0.5", "label_smoothing": 0.1, "eval_every": 3,
            "checkpoint_every": 1, "log_every": 1},
  "output_dir": "$work/unused"
}
JSON
}

same_state() {  # same_state RUN_A RUN_B: the checkpoints' weights, EMA and optimizer state
  for f in model.safetensors ema.safetensors optimizer.safetensors; do
    cmp "$1/checkpoint/$f" "$2/checkpoint/$f" || fail "$f differs between $1 and $2"
  done
}

# The step of RUN's newest complete checkpoint. A job ended by the launcher may have stopped rank 0
# between the two renames of a checkpoint (checkpoint -> .old, .tmp -> checkpoint): the newest
# complete one can be any of the three, and resuming from RUN/checkpoint finds it.
last_checkpoint_step() {
  local step
  step=$(cat "$1"/checkpoint{,.tmp,.old}/trainer.json 2> /dev/null | grep -o '"step": *[0-9]*' |
    grep -o '[0-9]*$' | sort -n | tail -1 || true)
  [ -n "$step" ] || fail "no complete checkpoint survived in $1"
  echo "$step"
}

# Waits until the run writing into RUN (its output in RUN.log) has written a checkpoint.
wait_for_checkpoint() {
  for _ in $(seq 600); do
    [ -f "$1/checkpoint/trainer.json" ] && return 0
    sleep 0.2
  done
  cat "$1.log"
  fail "the run wrote no checkpoint"
}

# Waits up to $1 s for the job started in the background ($launcher its pid) to end; its status in
# $code, the seconds in $elapsed.
wait_for_job() {
  local started
  started=$(date +%s)
  timeout "$1" tail --pid="$launcher" -f /dev/null || fail "the job did not end within $1 s"
  code=0
  wait "$launcher" || code=$?
  elapsed=$(($(date +%s) - started))
}
