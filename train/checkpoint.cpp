#include "train/checkpoint.h"

#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"
#include "ops/pointwise.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace evit::train {
namespace {

// The test hook of checkpoint.h: kills the process at `stage` of the configured checkpoint.
void maybe_crash_at(const char* stage) {
  static int checkpoints_started = 0;  // counted at the "files" stage, the first of each write
  if (std::string(stage) == "files") ++checkpoints_started;
  const char* hook = std::getenv("EVIT_TEST_CHECKPOINT_KILL");
  if (!hook || !*hook) return;
  std::string want = hook;
  int nth = 1;
  if (const size_t at = want.find('@'); at != std::string::npos) {
    nth = std::atoi(want.c_str() + at + 1);
    want.resize(at);
  }
  if (want == stage && nth == checkpoints_started) {
    std::fflush(nullptr);
    std::raise(SIGKILL);
  }
}

// Counts the non-finite values of a floating tensor (0 for other dtypes).
int64_t count_non_finite(const Tensor& t) {
  if (!is_floating(t.dtype()) || all_finite(t)) return 0;
  const Tensor c = t.detach().to(kCPU).to(DType::f64).contiguous();
  const double* p = c.data_ptr<double>();
  int64_t n = 0;
  for (int64_t i = 0; i < c.numel(); ++i) n += !std::isfinite(p[i]);
  return n;
}

// Throws when any floating tensor of `state` (which `part` names) holds inf or NaN.
void check_finite(const TensorMap& state, const char* part, const std::string& dir) {
  for (const auto& [name, t] : state)
    if (const int64_t bad = count_non_finite(t))
      EVIT_THROW("checkpoint not written: ", part, " tensor '", name, "' holds ", bad, " non-finite value",
                 bad == 1 ? "" : "s", " of ", t.numel(),
                 " (training has diverged; lower optimizer.lr or enable gradient clipping). The last finite "
                 "checkpoint in '",
                 dir, "' is kept.");
}

// trainer.json of a folder when the folder is complete (trainer.json parses and every file it
// lists exists), else a discarded value.
json complete_meta(const std::string& dir) {
  const json discarded = json::parse("", nullptr, false);
  if (!fs::is_regular_file(dir + "/trainer.json")) return discarded;
  json meta = json::parse(read_file(dir + "/trainer.json"), nullptr, false);
  if (meta.is_discarded() || !meta.is_object() || !meta.contains("step") || !meta["step"].is_number_integer())
    return discarded;
  for (const json& f : meta.value("files", json::array()))
    if (!f.is_string() || !fs::is_regular_file(dir + "/" + f.get<std::string>())) return discarded;
  return meta;
}

// The newest complete folder among DIR, DIR.tmp and DIR.old (ties prefer DIR, then DIR.tmp);
// `dir` of the result is empty when none is complete.
CheckpointLocation newest_complete(const std::string& dir) {
  CheckpointLocation best;
  for (const std::string& candidate : {dir, dir + ".tmp", dir + ".old"}) {
    const json meta = complete_meta(candidate);
    if (meta.is_discarded()) continue;
    const int64_t step = meta["step"].get<int64_t>();
    if (best.dir.empty() || step > best.step) best = {candidate, step, "", meta};
  }
  return best;
}

void save(const std::string& path, const TensorMap& state, std::vector<std::string>& files) {
  save_safetensors(path, state);
  files.push_back(fs::path(path).filename().string());
}

}  // namespace

void write_checkpoint(const std::string& dir, const CheckpointParts& parts, const RunPosition& position) {
  EVIT_CHECK(parts.model && parts.optimizer && parts.schedule, "checkpoint: model, optimizer and schedule are required");
  const std::string tmp = dir + ".tmp", old = dir + ".old";
  // Everything is checked before anything on disk changes.
  const TensorMap model = parts.model->state_dict(), optimizer = parts.optimizer->state_dict();
  check_finite(model, "model", dir);
  check_finite(optimizer, "optimizer", dir);
  TensorMap ema, eval_model;
  if (parts.ema) check_finite(ema = parts.ema->state_dict(), "EMA", dir);
  if (parts.eval_model) check_finite(eval_model = parts.eval_model->state_dict(), "evaluation-weights", dir);

  // Settle what an earlier crash left, so that DIR holds the newest complete checkpoint while
  // DIR.tmp is rebuilt below.
  if (fs::exists(tmp) || fs::exists(old)) {
    const CheckpointLocation newest = newest_complete(dir);
    if (!newest.dir.empty() && newest.dir != dir) {
      fs::remove_all(dir);
      fs::rename(newest.dir, dir);
    }
    fs::remove_all(tmp);
    fs::remove_all(old);
  }

  fs::create_directories(tmp);
  std::vector<std::string> files;
  save(tmp + "/model.safetensors", model, files);
  maybe_crash_at("files");
  save(tmp + "/optimizer.safetensors", optimizer, files);
  save(tmp + "/schedule.safetensors", parts.schedule->state_dict(), files);
  if (parts.ema) save(tmp + "/ema.safetensors", ema, files);
  if (parts.scaler) save(tmp + "/grad_scaler.safetensors", parts.scaler->state_dict(), files);
  if (parts.eval_model) save(tmp + "/eval_model.safetensors", eval_model, files);
  const json meta = {{"step", position.step},
                     {"epoch", position.epoch},
                     {"batch_in_epoch", position.batch_in_epoch},
                     {"loss_sum", position.loss_sum},
                     {"loss_count", position.loss_count},
                     {"rng", {{"seed", position.rng.seed}, {"offset", position.rng.offset}}},
                     {"files", files},
                     {"config", position.config}};
  write_file_atomic(tmp + "/trainer.json", meta.dump(2));  // last: it marks DIR.tmp complete
  maybe_crash_at("written");
  if (fs::exists(dir)) fs::rename(dir, old);
  maybe_crash_at("moved_old");
  fs::rename(tmp, dir);
  maybe_crash_at("swapped");
  fs::remove_all(old);
}

CheckpointLocation locate_checkpoint(const std::string& dir) {
  CheckpointLocation found = newest_complete(dir);
  if (found.dir.empty()) {
    std::string seen;
    for (const std::string& c : {dir, dir + ".tmp", dir + ".old"})
      if (fs::exists(c)) seen += (seen.empty() ? "" : ", ") + ("'" + c + "'");
    EVIT_CHECK(!seen.empty(), "checkpoint folder '", dir, "' not found");
    EVIT_THROW("no complete checkpoint at '", dir, "': ", seen,
               " exist but none holds a trainer.json listing files that are all present (a crash before the first "
               "checkpoint was complete?)");
  }
  if (found.dir != dir)
    found.note = "'" + dir + "' was left mid-swap by an interrupted run; using '" + found.dir +
                 "', the newest complete checkpoint (step " + std::to_string(found.step) + ")";
  return found;
}

RunPosition read_checkpoint(const std::string& requested, const CheckpointParts& parts, bool* has_ema) {
  const CheckpointLocation where = locate_checkpoint(requested);
  if (!where.note.empty()) std::printf("resume: %s\n", where.note.c_str());
  const std::string& dir = where.dir;
  const json& meta = where.meta;  // parsed (and found complete) by locate_checkpoint
  RunPosition p;
  try {
    p.step = meta.at("step").get<int64_t>();
    p.epoch = meta.at("epoch").get<int64_t>();
    p.batch_in_epoch = meta.at("batch_in_epoch").get<int64_t>();
    p.loss_sum = meta.value("loss_sum", 0.0);
    p.loss_count = meta.value("loss_count", int64_t{0});
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
