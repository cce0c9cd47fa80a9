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
// The folder is written as DIR.tmp and swapped into place (DIR -> DIR.old, DIR.tmp -> DIR), so a
// crash while writing never damages the previous checkpoint.
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

// Restores every non-null part from `dir` and returns the position. `has_ema` tells whether the
// folder holds an EMA shadow (a run without EMA resumed with EMA starts the average anew).
RunPosition read_checkpoint(const std::string& dir, const CheckpointParts& parts, bool* has_ema = nullptr);

}  // namespace evit::train
