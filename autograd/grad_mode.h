// Grad mode (thread-local) and anomaly mode switches.
#pragma once

namespace evit {

class GradMode {
 public:
  static bool is_enabled();
  static void set_enabled(bool on);
};

// Disables graph recording in a scope (optimizer steps, evaluation, in-place initialisation).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

class EnableGradGuard {
 public:
  EnableGradGuard() : prev_(GradMode::is_enabled()) { GradMode::set_enabled(true); }
  ~EnableGradGuard() { GradMode::set_enabled(prev_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool prev_;
};

// Anomaly mode (EVIT_ANOMALY=1 or set_anomaly_enabled): every recorded op checks its outputs
// (the first op turning finite inputs into NaN/Inf is named), every node records its forward op
// and input shapes, and the engine checks each produced gradient for NaN/Inf, naming the node.
bool anomaly_enabled();
void set_anomaly_enabled(bool on);

// Turns anomaly mode on for a scope.
class AnomalyGuard {
 public:
  AnomalyGuard() : prev_(anomaly_enabled()) { set_anomaly_enabled(true); }
  ~AnomalyGuard() { set_anomaly_enabled(prev_); }
  AnomalyGuard(const AnomalyGuard&) = delete;
  AnomalyGuard& operator=(const AnomalyGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace evit
