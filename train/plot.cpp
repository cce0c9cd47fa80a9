#include "train/plot.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

#include "core/error.h"

namespace fs = std::filesystem;

namespace evit::train {
namespace {

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (step, value)
};

// Series in the order their names first appear in the file.
std::vector<Series> read_metrics(const std::string& path) {
  std::ifstream in(path);
  EVIT_CHECK(in.good(), "plot_metrics: cannot read '", path, "'");
  std::vector<Series> series;
  std::map<std::string, size_t> index;
  std::string line;
  for (int64_t lineno = 1; std::getline(in, line); ++lineno) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      EVIT_THROW("plot_metrics: ", path, ":", lineno, ": not valid JSON (", e.what(), ")");
    }
    EVIT_CHECK(j.is_object(), "plot_metrics: ", path, ":", lineno, ": expected a JSON object");
    EVIT_CHECK(j.contains("step") && j["step"].is_number(), "plot_metrics: ", path, ":", lineno,
               ": no numeric \"step\" field");
    const double step = j["step"].get<double>();
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "step" || it.key() == "epoch" || !it.value().is_number()) continue;
      auto [pos, fresh] = index.emplace(it.key(), series.size());
      if (fresh) series.push_back({it.key(), {}});
      series[pos->second].points.emplace_back(step, it.value().get<double>());
    }
  }
  EVIT_CHECK(!series.empty(), "plot_metrics: '", path, "' has no numeric metrics besides \"step\"");
  return series;
}

// A gnuplot single-quoted string ('' stands for a quote inside).
std::string gp_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// A POSIX shell single-quoted word.
std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string write_data(const fs::path& dir, size_t i, const Series& s) {
  fs::path p = dir / ("series" + std::to_string(i) + ".dat");
  std::ofstream f(p);
  char buf[64];
  for (auto& [x, y] : s.points) {
    std::snprintf(buf, sizeof buf, "%.17g %.17g\n", x, y);
    f << buf;
  }
  EVIT_CHECK(f.good(), "plot_metrics: cannot write '", p.string(), "'");
  return p.string();
}

bool is_lr(const std::string& name) { return name.find("lr") != std::string::npos; }

void run_gnuplot(const fs::path& script, const fs::path& log) {
  std::string cmd = "gnuplot " + sh_quote(script.string()) + " > " + sh_quote(log.string()) + " 2>&1";
  int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::ifstream f(log);
    std::stringstream ss;
    ss << f.rdbuf();
    EVIT_THROW("plot_metrics: gnuplot failed (status ", rc, ") on '", script.string(), "': ", ss.str());
  }
}

// Removes the temporary folder however the plotting ends.
struct TempDir {
  fs::path path;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

std::vector<std::string> plot_metrics(const std::string& jsonl_path, const std::string& out_png_prefix) {
  EVIT_CHECK(std::system("command -v gnuplot > /dev/null 2>&1") == 0,
             "plot_metrics: gnuplot not found; install it with 'apt-get install gnuplot-nox' "
             "(tools/install_deps.sh does)");
  std::vector<Series> series = read_metrics(jsonl_path);

  static std::atomic<int> counter{0};
  TempDir tmp{fs::temp_directory_path() /
              ("evit_plot_" + std::to_string(::getpid()) + "_" + std::to_string(counter++))};
  fs::create_directories(tmp.path);
  fs::path prefix(out_png_prefix);
  if (prefix.has_parent_path()) fs::create_directories(prefix.parent_path());

  std::vector<const Series*> train, val;
  for (const Series& s : series) (s.name.rfind("val/", 0) == 0 ? val : train).push_back(&s);
  std::vector<std::string> files;
  for (size_t i = 0; i < series.size(); ++i) files.push_back(write_data(tmp.path, i, series[i]));
  auto file_of = [&](const Series* s) { return files[static_cast<size_t>(s - series.data())]; };

  std::ostringstream gp;
  gp << "set termoption noenhanced\n";  // metric names contain '_' and '/'
  std::vector<std::string> written;
  if (!train.empty()) {
    const std::string out = out_png_prefix + "_train.png";
    bool any_lr = false, any_other = false;
    for (auto* s : train) (is_lr(s->name) ? any_lr : any_other) = true;
    gp << "set terminal pngcairo size 1000,600 noenhanced\n"
       << "set output " << gp_quote(out) << "\n"
       << "set title 'training'\nset xlabel 'step'\nset grid\nset key outside right top\n";
    if (any_lr && any_other) gp << "set ylabel 'value'\nset y2label 'learning rate'\nset y2tics\nset ytics nomirror\n";
    gp << "plot ";
    for (size_t k = 0; k < train.size(); ++k) {
      const Series* s = train[k];
      const bool right = is_lr(s->name) && any_other;
      gp << (k ? ", " : "") << gp_quote(file_of(s)) << " using 1:2 with lines lw 2 axes x1y" << (right ? 2 : 1)
         << " title " << gp_quote(s->name);
    }
    gp << "\nunset output\nunset y2tics\nunset y2label\nset ytics mirror\nunset ylabel\n";
    written.push_back(out);
  }
  if (!val.empty()) {
    const std::string out = out_png_prefix + "_val.png";
    gp << "set terminal pngcairo size 1000," << 300 * std::max<size_t>(2, val.size()) << " noenhanced\n"
       << "set output " << gp_quote(out) << "\n"
       << "set multiplot layout " << val.size() << ",1 title 'validation'\n"
       << "set xlabel 'step'\nset grid\nunset key\n";
    for (const Series* s : val)
      gp << "set title " << gp_quote(s->name) << "\nplot " << gp_quote(file_of(s))
         << " using 1:2 with linespoints lw 2 pt 7\n";
    gp << "unset multiplot\nunset output\n";
    written.push_back(out);
  }
  const fs::path script = tmp.path / "plot.gp";
  {
    std::ofstream f(script);
    f << gp.str();
    EVIT_CHECK(f.good(), "plot_metrics: cannot write '", script.string(), "'");
  }
  run_gnuplot(script, tmp.path / "gnuplot.log");
  for (const std::string& w : written)
    EVIT_CHECK(fs::exists(w) && fs::file_size(w) > 0, "plot_metrics: gnuplot did not write '", w, "'");
  return written;
}

}  // namespace evit::train
