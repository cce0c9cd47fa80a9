#include "train/progress.h"

#include <cmath>
#include <unistd.h>

namespace evit::train {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(seconds);
  char buf[48];
  if (s < 3600) std::snprintf(buf, sizeof buf, "%02lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return buf;
}

std::string format_rate(double r) {
  if (!std::isfinite(r) || r <= 0) return "? it/s";
  char buf[48];
  if (r >= 1) std::snprintf(buf, sizeof buf, "%.1f it/s", r);
  else std::snprintf(buf, sizeof buf, "%.2f s/it", 1.0 / r);
  return buf;
}

std::string format_bar(double fraction, int width) {
  if (width <= 0) return "";
  if (!(fraction > 0)) fraction = 0;  // also NaN
  if (fraction > 1) fraction = 1;
  const int filled = static_cast<int>(std::floor(fraction * width));
  return std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(width - filled), ' ');
}

std::string format_value(double v) {
  char buf[64];
  const double a = std::abs(v);
  if (v == 0 || (a >= 1e-3 && a < 1e5)) std::snprintf(buf, sizeof buf, "%.3f", v);
  else std::snprintf(buf, sizeof buf, "%.3e", v);
  return buf;
}

std::string format_progress(const std::string& label, int64_t done, int64_t total, double elapsed_s,
                            const Stats& stats, int bar_width, int64_t done_before) {
  const double rate = elapsed_s > 0 ? static_cast<double>(done - done_before) / elapsed_s : 0;
  std::string line = label;
  char buf[64];
  if (total > 0) {
    const double f = static_cast<double>(done) / static_cast<double>(total);
    std::snprintf(buf, sizeof buf, " %3d%% |", static_cast<int>(std::floor(std::min(std::max(f, 0.0), 1.0) * 100)));
    line += buf + format_bar(f, bar_width) + "| ";
    line += std::to_string(done) + "/" + std::to_string(total);
    const double eta = rate > 0 ? (total - done) / rate : -1;
    line += " [" + format_duration(elapsed_s) + "<" + format_duration(done >= total ? 0 : eta) + ", " +
            format_rate(rate) + "]";
  } else {
    line += " " + std::to_string(done) + " [" + format_duration(elapsed_s) + ", " + format_rate(rate) + "]";
  }
  for (const auto& [k, v] : stats) line += " " + k + "=" + format_value(v);
  return line;
}

Progress::Progress(int64_t total, std::string label, std::FILE* out, double interval_s)
    : total_(total), label_(std::move(label)), out_(out ? out : stdout),
      tty_(::isatty(::fileno(out_)) == 1), start_(std::chrono::steady_clock::now()) {
  interval_ = interval_s > 0 ? interval_s : (tty_ ? 0.1 : 10.0);
}

Progress::~Progress() {
  if (tty_ && !finished_ && last_len_ > 0) std::fputc('\n', out_), std::fflush(out_);
}

void Progress::update(int64_t done, const Stats& stats) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  update_at(done, elapsed, stats);
}

void Progress::update_at(int64_t done, double elapsed_s, const Stats& stats) {
  last_done_ = done;
  last_elapsed_ = elapsed_s;
  last_stats_ = stats;
  const bool complete = total_ > 0 && done >= total_;
  if (last_shown_ >= 0 && !complete && elapsed_s - last_shown_ < interval_) return;
  if (complete && shown_done_ == done) return;  // the final state is shown once
  last_shown_ = elapsed_s;
  shown_done_ = done;
  emit(format_progress(label_, done, total_, elapsed_s, stats, 20, done_before_));
}

void Progress::finish() {
  if (finished_) return;
  if (last_done_ >= 0 && shown_done_ != last_done_) {
    shown_done_ = last_done_;
    emit(format_progress(label_, last_done_, total_, last_elapsed_, last_stats_, 20, done_before_));
  }
  if (tty_ && last_len_ > 0) std::fputc('\n', out_);
  std::fflush(out_);
  finished_ = true;
}

void Progress::emit(const std::string& line) {
  if (tty_) {
    // Redraw in place; pad with spaces when the new line is shorter than the previous one.
    std::string padded = line;
    if (padded.size() < last_len_) padded.append(last_len_ - padded.size(), ' ');
    std::fprintf(out_, "\r%s", padded.c_str());
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  last_len_ = line.size();
  std::fflush(out_);
}

}  // namespace evit::train
