#include "train/checkpoint.h"

#include <filesystem>

#include "core/error.h"
#include "core/safetensors.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace evit::train {

void write_checkpoint(const std::string& dir, const CheckpointParts& parts, const RunPosition& position) {
  EVIT_CHECK(parts.model && parts.optimizer && parts.schedule, "checkpoint: model, optimizer and schedule are required");
  const std::string tmp = dir + ".tmp", old = dir + ".old";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  save_safetensors(tmp + "/model.safetensors", parts.model->state_dict());
  save_safetensors(tmp + "/optimizer.safetensors", parts.optimizer->state_dict());
  save_safetensors(tmp + "/schedule.safetensors", parts.schedule->state_dict());
  if (parts.ema) save_safetensors(tmp + "/ema.safetensors", parts.ema->state_dict());
  if (parts.scaler) save_safetensors(tmp + "/grad_scaler.safetensors", parts.scaler->state_dict());
  if (parts.eval_model) save_safetensors(tmp + "/eval_model.safetensors", parts.eval_model->state_dict());
  const json meta = {{"step", position.step},
                     {"epoch", position.epoch},
                     {"batch_in_epoch", position.batch_in_epoch},
                     {"rng", {{"seed", position.rng.seed}, {"offset", position.rng.offset}}},
                     {"config", position.config}};
  write_file_atomic(tmp + "/trainer.json", meta.dump(2));
  // Swap folders so that a crash at any point leaves a complete checkpoint on disk.
  fs::remove_all(old);
  if (fs::exists(dir)) fs::rename(dir, old);
  fs::rename(tmp, dir);
  fs::remove_all(old);
}

RunPosition read_checkpoint(const std::string& dir, const CheckpointParts& parts, bool* has_ema) {
  EVIT_CHECK(fs::is_directory(dir), "resume: checkpoint folder '", dir, "' not found");
  json meta;
  try {
    meta = json::parse(read_file(dir + "/trainer.json"));
  } catch (const json::exception& e) {
    EVIT_THROW("resume: '", dir, "/trainer.json' is not valid JSON: ", e.what());
  }
  RunPosition p;
  try {
    p.step = meta.at("step").get<int64_t>();
    p.epoch = meta.at("epoch").get<int64_t>();
    p.batch_in_epoch = meta.at("batch_in_epoch").get<int64_t>();
    p.rng = {meta.at("rng").at("seed").get<uint64_t>(), meta.at("rng").at("offset").get<uint64_t>()};
    p.config = meta.value("config", json::object());
  } catch (const json::exception& e) {
    EVIT_THROW("resume: '", dir, "/trainer.json' lacks a field or has the wrong type: ", e.what());
  }
  if (parts.model) parts.model->load(dir + "/model.safetensors", true);
  if (parts.optimizer) parts.optimizer->load_state_dict(load_safetensors(dir + "/optimizer.safetensors"));
  if (parts.schedule) parts.schedule->load_state_dict(load_safetensors(dir + "/schedule.safetensors"));
  const bool ema_saved = fs::exists(dir + "/ema.safetensors");
  if (has_ema) *has_ema = ema_saved;
  if (parts.ema && ema_saved) parts.ema->load(dir + "/ema.safetensors");
  if (parts.scaler && fs::exists(dir + "/grad_scaler.safetensors"))
    parts.scaler->load_state_dict(load_safetensors(dir + "/grad_scaler.safetensors"));
  return p;
}

}  // namespace evit::train
