// Training checkpoints: one folder holding everything a run needs to continue bit for bit.
//
//   model.safetensors        the trained weights
//   optimizer.safetensors    the optimizer's state dict (AdamW moments / SGD momentum)
//   schedule.safetensors     the learning-rate schedule's position
//   ema.safetensors          the EMA shadow (runs with EMA)
//   grad_scaler.safetensors  the f16 loss scaler (f16 mixed-precision runs)
//   eval_model.safetensors   the weights the trainer evaluates, when they differ from the model's
//                            (EMA, re-estimated BatchNorm statistics): what `evit eval` scores
//   trainer.json             step, epoch, position in the epoch, the default generator's state
//                            and the resolved config
//
// The folder is written as DIR.tmp, trainer.json last (it lists the files it covers, so its
// presence marks the folder complete), then swapped into place: DIR -> DIR.old, DIR.tmp -> DIR,
// DIR.old removed. A crash at any point leaves at least one complete folder among DIR, DIR.tmp and
// DIR.old; locate_checkpoint finds the newest, and the next write_checkpoint tidies up after it.
//
// Nothing non-finite is ever committed: write_checkpoint checks every floating tensor it would
// save (parameters, buffers, optimizer state, EMA, evaluation weights) first and throws, naming the
// tensor, so a diverged run never replaces its last finite checkpoint.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/generator.h"
#include "nn/module.h"
#include "optim/ema.h"
#include "optim/grad_scaler.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"

namespace evit::train {

// Where a run stands: the small part of a checkpoint (trainer.json).
struct RunPosition {
  int64_t step = 0, epoch = 0, batch_in_epoch = 0;
  double loss_sum = 0;  // the loss average under way since the last log line, so a resumed run
  int64_t loss_count = 0;  // logs the same first average as an uninterrupted one
  GeneratorState rng;    // the default generator (model init, dropout, drop path)
  nlohmann::json config;
};

// The live objects a checkpoint saves and restores; optional parts may be null.
struct CheckpointParts {
  nn::Module* model = nullptr;
  optim::Optimizer* optimizer = nullptr;
  optim::WarmupCosine* schedule = nullptr;
  optim::EMA* ema = nullptr;
  optim::GradScaler* scaler = nullptr;
  const nn::Module* eval_model = nullptr;  // written only, as eval_model.safetensors
};

void write_checkpoint(const std::string& dir, const CheckpointParts& parts, const RunPosition& position);

// The complete checkpoint folder to read for DIR: DIR itself, or DIR.tmp / DIR.old as a crash
// during the swap can leave them, whichever complete one holds the latest step. `note` is empty
// when DIR itself was taken, else says which folder was taken and why. Throws when none is
// complete, naming what was found. Reads only.
struct CheckpointLocation {
  std::string dir;
  int64_t step = 0;
  std::string note;
  nlohmann::json meta;  // the folder's trainer.json, already read and parsed
};
CheckpointLocation locate_checkpoint(const std::string& dir);

// Restores every non-null part from the folder locate_checkpoint(dir) finds (printing its note)
// and returns the position. `has_ema` tells whether the folder holds an EMA shadow (a run without
// EMA resumed with EMA starts the average anew).
RunPosition read_checkpoint(const std::string& dir, const CheckpointParts& parts, bool* has_ema = nullptr);

// Test hook: when the environment variable EVIT_TEST_CHECKPOINT_KILL is "STAGE" or "STAGE@N", the
// process kills itself (SIGKILL, like a crash) when the Nth checkpoint (default the first) it
// writes reaches STAGE: "files" (DIR.tmp half written), "written" (DIR.tmp complete), "moved_old"
// (DIR moved to DIR.old) or "swapped" (DIR.tmp renamed to DIR, DIR.old not yet removed).
inline constexpr const char* kCheckpointKillStages[] = {"files", "written", "moved_old", "swapped"};

}  // namespace evit::train
