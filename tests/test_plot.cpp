// Training console and plot output: the progress line's pieces and gnuplot-drawn metric curves.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "tests/support/test_util.h"
#include "train/plot.h"
#include "train/progress.h"

using namespace evit;
namespace fs = std::filesystem;

TEST_CASE("progress: durations, rates, bars and values", "[plot]") {
  REQUIRE(train::format_duration(12.9) == "00:12");
  REQUIRE(train::format_duration(75) == "01:15");
  REQUIRE(train::format_duration(3599.5) == "59:59");
  REQUIRE(train::format_duration(3723) == "1:02:03");
  REQUIRE(train::format_duration(-1) == "?");
  REQUIRE(train::format_duration(INFINITY) == "?");
  REQUIRE(train::format_rate(370.0 / 12.0) == "30.8 it/s");
  REQUIRE(train::format_rate(0.4) == "2.50 s/it");
  REQUIRE(train::format_rate(0) == "? it/s");
  REQUIRE(train::format_bar(0.37, 20) == "#######             ");
  REQUIRE(train::format_bar(0.5, 3) == "#  ");
  REQUIRE(train::format_bar(1.5, 4) == "####");
  REQUIRE(train::format_bar(-0.1, 4) == "    ");
  REQUIRE(train::format_value(0.53) == "0.530");
  REQUIRE(train::format_value(0) == "0.000");
  REQUIRE(train::format_value(1e-4) == "1.000e-04");
  REQUIRE(train::format_value(123456) == "1.235e+05");
}

TEST_CASE("progress: the whole line", "[plot]") {
  // 370 of 1000 in 12 s: 30.83 it/s, 630 left -> 20.4 s.
  REQUIRE(train::format_progress("train", 370, 1000, 12.0, {{"loss", 0.53}}) ==
          "train  37% |#######             | 370/1000 [00:12<00:20, 30.8 it/s] loss=0.530");
  REQUIRE(train::format_progress("eval", 10, 10, 4.0, {}, 4) == "eval 100% |####| 10/10 [00:04<00:00, 2.5 it/s]");
  // Nothing done yet: rate and ETA unknown.
  REQUIRE(train::format_progress("x", 0, 5, 0.0, {}, 2) == "x   0% |  | 0/5 [00:00<?, ? it/s]");
  // Unknown total.
  REQUIRE(train::format_progress("eval", 50, 0, 10.0, {{"acc", 0.5}, {"lr", 2e-4}}) ==
          "eval 50 [00:10, 5.0 it/s] acc=0.500 lr=2.000e-04");
}

TEST_CASE("progress: plain periodic lines when the stream is not a terminal", "[plot]") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  {
    train::Progress p(4, "job", f, 10.0);
    REQUIRE_FALSE(p.is_tty());
    p.update_at(0, 0.0);    // first: shown
    p.update_at(1, 5.0);    // within the interval: not shown
    p.update_at(2, 10.5);   // shown
    p.update_at(3, 12.0);   // not shown
    p.update_at(4, 13.0);   // complete: shown
    p.finish();             // already shown: nothing more
  }
  std::rewind(f);
  std::string text;
  for (int c; (c = std::fgetc(f)) != EOF;) text += static_cast<char>(c);
  std::fclose(f);
  REQUIRE(text.find('\r') == std::string::npos);
  REQUIRE(std::count(text.begin(), text.end(), '\n') == 3);
  REQUIRE(text.find("0/4") != std::string::npos);
  REQUIRE(text.find("2/4") != std::string::npos);
  REQUIRE(text.find("1/4") == std::string::npos);
  REQUIRE(text.find("job 100% |") != std::string::npos);
}

namespace {
bool is_png(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::string head(8, '\0');
  f.read(head.data(), 8);
  return f.good() && head == "\x89PNG\r\n\x1a\n";
}
}  // namespace

TEST_CASE("plot_metrics draws training and validation curves with gnuplot", "[plot]") {
  fs::path dir = fs::temp_directory_path() / "evit_plot_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string jsonl = (dir / "metrics.jsonl").string();
  {
    std::ofstream f(jsonl);
    for (int s = 1; s <= 50; ++s) {
      f << "{\"step\": " << s << ", \"loss\": " << 2.0 / s << ", \"lr\": " << 1e-3 * (1 - s / 60.0)
        << ", \"phase\": \"train\"}\n";
      if (s % 10 == 0) f << "{\"step\": " << s << ", \"val/mIoU\": " << 10 + s << ", \"val/psnr\": " << 25 + s / 10.0 << "}\n";
    }
  }
  auto files = train::plot_metrics(jsonl, (dir / "out" / "run1").string());
  REQUIRE(files.size() == 2);
  REQUIRE(files[0] == (dir / "out" / "run1_train.png").string());
  REQUIRE(files[1] == (dir / "out" / "run1_val.png").string());
  for (auto& p : files) {
    INFO(p);
    REQUIRE(is_png(p));
    REQUIRE(fs::file_size(p) > 1000);
  }

  // Only training fields: one file.
  {
    std::ofstream f(jsonl);
    f << "{\"step\": 1, \"loss\": 1.0}\n{\"step\": 2, \"loss\": 0.5}\n";
  }
  auto only = train::plot_metrics(jsonl, (dir / "run2").string());
  REQUIRE(only.size() == 1);
  REQUIRE(is_png(only[0]));

  // Bad input names the line.
  {
    std::ofstream f(jsonl);
    f << "{\"step\": 1, \"loss\": 1.0}\n{\"loss\": 0.5}\n";
  }
  REQUIRE_THROWS_WITH(train::plot_metrics(jsonl, (dir / "run3").string()),
                      Catch::Contains("metrics.jsonl:2: no numeric \"step\""));
  {
    std::ofstream f(jsonl);
    f << "{\"step\": 1, \"loss\": 1.0}\nnot json\n";
  }
  REQUIRE_THROWS_WITH(train::plot_metrics(jsonl, (dir / "run3").string()), Catch::Contains(":2: not valid JSON"));
  REQUIRE_THROWS_WITH(train::plot_metrics((dir / "missing.jsonl").string(), (dir / "run3").string()),
                      Catch::Contains("cannot read"));

  // Without gnuplot on PATH the error says what to install.
  const char* old = std::getenv("PATH");
  std::string saved = old ? old : "";
  ::setenv("PATH", "/nonexistent", 1);
  std::string msg;
  try {
    train::plot_metrics(jsonl, (dir / "run4").string());
  } catch (const std::exception& e) {
    msg = e.what();
  }
  ::setenv("PATH", saved.c_str(), 1);
  REQUIRE(msg.find("gnuplot-nox") != std::string::npos);
  fs::remove_all(dir);
}
