// A console progress bar for long loops (training epochs, evaluation, dataset generation):
//
//   train  37% |#######             | 370/1000 [00:12<00:20, 30.8 it/s] loss=0.530
//
// On a terminal the line is redrawn in place with '\r' (at most every `interval_s`, 0.1 s by
// default); when the stream is not a terminal (CI logs, files) a plain line is written every
// `interval_s` (10 s by default), so logs stay readable. The first update and the one reaching
// `total` are always shown.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace evit::train {

using Stats = std::vector<std::pair<std::string, double>>;

// "MM:SS" below an hour, "H:MM:SS" from an hour on; seconds are truncated. "?" when negative or
// not finite (an unknown ETA).
std::string format_duration(double seconds);
// Items per second: "30.8 it/s", or seconds per item below one item per second ("2.50 s/it");
// "? it/s" when unknown (zero or not finite).
std::string format_rate(double items_per_second);
// `width` characters: floor(fraction * width) '#' then spaces; fraction is clamped to [0, 1].
std::string format_bar(double fraction, int width);
// A statistic's value: 3 decimals for magnitudes in [1e-3, 1e5) (and 0), otherwise scientific
// with 3 decimals ("1.000e-04").
std::string format_value(double v);
// The whole line (no '\r' or newline). total <= 0 means unknown: no percentage, bar or ETA.
// `done_before` items were finished before the clock started (a resumed run): the rate counts
// only the items done since.
std::string format_progress(const std::string& label, int64_t done, int64_t total, double elapsed_s,
                            const Stats& stats = {}, int bar_width = 20, int64_t done_before = 0);

class Progress {
 public:
  // out: the stream (stdout by default); interval_s <= 0 picks the default for the stream kind.
  Progress(int64_t total, std::string label, std::FILE* out = stdout, double interval_s = 0);
  ~Progress();  // ends a terminal line that finish() did not end
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Reports `done` items finished so far (with optional statistics shown after the counts).
  void update(int64_t done, const Stats& stats = {});
  // The same with the elapsed time given, for callers with their own clock (and for tests).
  void update_at(int64_t done, double elapsed_s, const Stats& stats = {});
  // Items finished before this Progress started (a resumed run): excluded from the rate and ETA.
  void set_done_before(int64_t n) { done_before_ = n; }
  // Shows the last state (if not yet shown) and ends the line.
  void finish();
  bool is_tty() const { return tty_; }

 private:
  void emit(const std::string& line);

  int64_t total_;
  std::string label_;
  std::FILE* out_;
  bool tty_;
  double interval_;
  std::chrono::steady_clock::time_point start_;
  double last_shown_ = -1;  // elapsed time of the last line shown; < 0 before the first
  int64_t last_done_ = -1, shown_done_ = -1, done_before_ = 0;
  double last_elapsed_ = 0;
  Stats last_stats_;
  size_t last_len_ = 0;
  bool finished_ = false;
};

}  // namespace evit::train
