#include "train/sam_eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/dist/ordered_gather.h"
#include "core/error.h"
#include "data/distance_transform.h"
#include "data/image.h"

namespace evit::train {
namespace fs = std::filesystem;

double mask_iou_percent(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  EVIT_CHECK(a.size() == b.size(), "mask_iou_percent: masks of ", a.size(), " and ", b.size(), " pixels");
  int64_t inter = 0, uni = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const bool x = a[i] != 0, y = b[i] != 0;
    inter += x && y;
    uni += x || y;
  }
  return static_cast<double>(inter) / (static_cast<double>(uni) + 1e-7) * 100;
}

Clicker::Clicker(std::vector<uint8_t> ground_truth, int64_t h, int64_t w)
    : gt_(std::move(ground_truth)), clicked_(gt_.size(), 0), h_(h), w_(w) {
  EVIT_CHECK(static_cast<int64_t>(gt_.size()) == h * w, "Clicker: mask of ", gt_.size(), " pixels is not ", h, "x", w);
}

const Click& Clicker::next(const std::vector<uint8_t>& prediction) {
  EVIT_CHECK(prediction.size() == gt_.size(), "Clicker: prediction of ", prediction.size(), " pixels, mask of ",
             gt_.size());
  std::vector<uint8_t> fn(gt_.size()), fp(gt_.size());
  for (size_t i = 0; i < gt_.size(); ++i) {
    fn[i] = gt_[i] && !prediction[i];
    fp[i] = !gt_[i] && prediction[i];
  }
  // Squared distances order like the distances, and ties are exact (integers).
  auto farthest = [&](const std::vector<uint8_t>& region) {
    const std::vector<int64_t> d = data::squared_distance_transform(region, h_, w_, true);
    int64_t best = 0;
    size_t at = 0;
    for (size_t i = 0; i < d.size(); ++i) {
      const int64_t v = clicked_[i] ? 0 : d[i];
      if (v > best) best = v, at = i;
    }
    return std::pair<int64_t, size_t>{best, at};
  };
  const auto [fn_best, fn_at] = farthest(fn);
  const auto [fp_best, fp_at] = farthest(fp);
  const bool positive = fn_best > fp_best;
  // With no error left (both maxima 0) every pixel ties at 0 and the first one is taken.
  const size_t at = positive ? fn_at : (fp_best > 0 ? fp_at : 0);
  clicked_[at] = 1;
  clicks_.push_back(Click{static_cast<int64_t>(at) % w_, static_cast<int64_t>(at) / w_, positive});
  return clicks_.back();
}

SamBucketScores sam_bucket_scores(const std::vector<SamInstanceScore>& instances, size_t column) {
  SamBucketScores s;
  std::map<std::string, double> total;
  for (const char* b : {"all", "small", "medium", "large"}) s.count[b] = 0, total[b] = 0;
  for (const SamInstanceScore& r : instances) {
    const double v = r.iou.at(column);
    auto add = [&](const char* b) { ++s.count[b], total[b] += v; };
    add("all");
    if (r.area <= 32.0 * 32.0) add("small");
    if (r.area >= 32.0 * 32.0 && r.area <= 96.0 * 96.0) add("medium");
    if (r.area >= 96.0 * 96.0) add("large");
  }
  for (auto& [b, n] : s.count)
    if (n > 0) s.miou[b] = total[b] / static_cast<double>(n);
  return s;
}

SamEvalResult evaluate_sam(SamPredictor& predictor, const data::InstanceSet& set, const std::string& image_root,
                           const SamEvalOptions& options, const std::function<void(int64_t, int64_t)>& progress,
                           dist::Communicator* job) {
  EVIT_CHECK(options.prompt == "box" || options.prompt == "points", "evaluate_sam: prompt must be box or points, not '",
             options.prompt, "'");
  std::vector<int> clicks = options.clicks;
  if (options.prompt == "points") {
    EVIT_CHECK(!clicks.empty(), "evaluate_sam: give the click counts to report (e.g. 1,3,5)");
    for (int k : clicks) EVIT_CHECK(k >= 1 && k <= 100, "evaluate_sam: click count ", k, " must be in 1..100");
  }
  SamEvalResult r;
  if (options.prompt == "box") {
    r.columns = {"box"};
  } else {
    for (int k : clicks) r.columns.push_back(std::to_string(k) + (k == 1 ? " click" : " clicks"));
  }
  const int max_clicks = options.prompt == "points" ? *std::max_element(clicks.begin(), clicks.end()) : 0;
  std::vector<const data::InstanceImage*> images;
  for (const data::InstanceImage& im : set.images) {
    if (!fs::is_regular_file(fs::path(image_root) / im.file)) {
      ++r.images_missing;
      continue;
    }
    images.push_back(&im);
  }
  if (options.max_images > 0 && static_cast<int64_t>(images.size()) > options.max_images) images.resize(options.max_images);
  EVIT_CHECK(!images.empty(), "evaluate_sam: none of the ", set.images.size(), " images of ", set.source,
             " is in '", image_root, "'");
  // Image n on rank n mod W. Each image's results travel as one list of numbers: the annotations
  // skipped as too small, the instances scored, then per instance its ids, area, IoUs and clicks
  // (their count, then x, y, positive each), decoded below in image order, so every rank ends with
  // the one-process result.
  const int ranks = job ? job->size() : 1, rank = job ? job->rank() : 0;
  std::vector<std::vector<double>> per_image(images.size());
  if (progress) progress(0, static_cast<int64_t>(images.size()));
  for (size_t n = static_cast<size_t>(rank); n < images.size(); n += static_cast<size_t>(ranks)) {
    const data::InstanceImage& im = *images[n];
    const std::string path = (fs::path(image_root) / im.file).string();
    const Image image = read_image(path);
    EVIT_CHECK(image.height == im.height && image.width == im.width, set.source, ": image ", im.id, " is ", im.height,
               "x", im.width, " but '", path, "' is ", image.height, "x", image.width);
    predictor.set_image(image);
    std::vector<double>& out = per_image[n];
    out.insert(out.end(), {0.0, 0.0});  // annotations skipped as too small, instances scored
    for (size_t a : set.annotations_of(im.id)) {
      const data::InstanceAnnotation& ann = set.annotations[a];
      if (ann.area < 1) {
        out[0] += 1;
        continue;
      }
      const std::vector<uint8_t> gt = data::rle_decode(data::annotation_mask(set, ann));
      out[1] += 1;
      out.insert(out.end(), {static_cast<double>(ann.id), static_cast<double>(im.id), ann.area});
      if (options.prompt == "box") {
        const auto& b = ann.bbox;
        SamPrompt prompt{{}, std::array<float, 4>{static_cast<float>(b[0]), static_cast<float>(b[1]),
                                                  static_cast<float>(b[0] + b[2]), static_cast<float>(b[1] + b[3])}};
        const SamPrediction p = predictor.predict(prompt, true);
        out.push_back(mask_iou_percent(p.mask(p.best()), gt));
        out.push_back(0);  // no clicks
      } else {
        Clicker clicker(gt, im.height, im.width);
        std::vector<uint8_t> pred(gt.size(), 0);
        SamPrompt prompt;
        std::vector<double> after(static_cast<size_t>(max_clicks) + 1, 0);
        for (int k = 1; k <= max_clicks; ++k) {
          const Click& c = clicker.next(pred);
          prompt.points.push_back({static_cast<float>(c.x), static_cast<float>(c.y), c.positive ? 1 : 0});
          const SamPrediction p = predictor.predict(prompt, true);
          pred = p.mask(p.best());
          after[k] = mask_iou_percent(pred, gt);
        }
        for (int k : clicks) out.push_back(after[k]);
        out.push_back(static_cast<double>(clicker.clicks().size()));
        for (const Click& c : clicker.clicks())
          out.insert(out.end(), {static_cast<double>(c.x), static_cast<double>(c.y), c.positive ? 1.0 : 0.0});
      }
    }
    if (progress) progress(static_cast<int64_t>(std::min(n + static_cast<size_t>(ranks), images.size())),
                           static_cast<int64_t>(images.size()));
  }
  dist::SingleProcess one;
  const std::vector<double> flat = dist::ordered_gather(job ? *job : one, per_image);
  // Decoding: the gathered list is the images' lists, in image order.
  size_t at = 0;
  auto next = [&] {
    EVIT_CHECK(at < flat.size(), "evaluate_sam: the gathered results end early (", flat.size(), " values)");
    return flat[at++];
  };
  for (size_t n = 0; n < images.size(); ++n) {
    r.skipped_small += static_cast<int64_t>(next());
    for (auto count = static_cast<int64_t>(next()); count > 0; --count) {
      SamInstanceScore sc;
      sc.annotation_id = static_cast<int64_t>(next());
      sc.image_id = static_cast<int64_t>(next());
      sc.area = next();
      for (size_t c = 0; c < r.columns.size(); ++c) sc.iou.push_back(next());
      const auto placed = static_cast<int64_t>(next());
      for (int64_t k = 0; k < placed; ++k) {
        Click c;
        c.x = static_cast<int64_t>(next());
        c.y = static_cast<int64_t>(next());
        c.positive = next() != 0;
        sc.clicks.push_back(c);
      }
      r.instances.push_back(std::move(sc));
    }
    ++r.images;
  }
  EVIT_CHECK(at == flat.size(), "evaluate_sam: ", flat.size() - at, " gathered values left over");
  for (size_t c = 0; c < r.columns.size(); ++c) r.scores.push_back(sam_bucket_scores(r.instances, c));
  return r;
}

nlohmann::json sam_masks_for_detections(SamPredictor& predictor, const data::InstanceSet& set,
                                        const std::string& image_root, const nlohmann::json& detections,
                                        const std::function<void(int64_t, int64_t)>& progress) {
  EVIT_CHECK(detections.is_array(), "detections: expected a COCO results list");
  // Detections per image, in input order; images in the order of their first detection.
  std::vector<int64_t> order;
  std::map<int64_t, std::vector<size_t>> by_image;
  for (size_t i = 0; i < detections.size(); ++i) {
    const nlohmann::json& d = detections[i];
    EVIT_CHECK(d.is_object() && d.contains("image_id") && d["image_id"].is_number_integer(), "detections[", i,
               "]: needs an integer \"image_id\"");
    const int64_t id = d["image_id"].get<int64_t>();
    try {
      (void)set.image_index(id);
    } catch (const Error&) {
      EVIT_THROW("detections[", i, "]: image_id ", id, " is not in ", set.source);
    }
    const nlohmann::json& b = d.contains("bbox") ? d["bbox"] : nlohmann::json();
    bool ok = b.is_array() && b.size() == 4;
    for (size_t k = 0; ok && k < 4; ++k) ok = b[k].is_number() && std::isfinite(b[k].get<double>());
    EVIT_CHECK(ok, "detections[", i, "]: \"bbox\" must be [x, y, width, height]");
    if (by_image[id].empty()) order.push_back(id);
    by_image[id].push_back(i);
  }
  nlohmann::json out = detections;
  if (progress) progress(0, static_cast<int64_t>(order.size()));
  for (size_t n = 0; n < order.size(); ++n) {
    const data::InstanceImage& im = set.images[set.image_index(order[n])];
    const std::string path = (fs::path(image_root) / im.file).string();
    const Image image = read_image(path);
    predictor.set_image(image);
    std::vector<SamPrompt> prompts;
    for (size_t i : by_image[order[n]]) {
      const auto b = detections[i]["bbox"].get<std::vector<double>>();
      prompts.push_back({{}, std::array<float, 4>{static_cast<float>(b[0]), static_cast<float>(b[1]),
                                                  static_cast<float>(b[0] + b[2]), static_cast<float>(b[1] + b[3])}});
    }
    const std::vector<SamPrediction> preds = predictor.predict_batch(prompts, true);
    for (size_t j = 0; j < preds.size(); ++j) {
      const std::vector<uint8_t> mask = preds[j].mask(preds[j].best());
      const data::Rle rle = data::rle_encode(mask.data(), image.height, image.width);
      out[by_image[order[n]][j]]["segmentation"] = {{"size", {image.height, image.width}},
                                                    {"counts", data::rle_to_string(rle)}};
    }
    if (progress) progress(static_cast<int64_t>(n) + 1, static_cast<int64_t>(order.size()));
  }
  return out;
}

std::string format_sam_table(const SamEvalResult& r) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-10s %8s %8s %8s %8s\n", "prompt", "all", "small", "medium", "large");
  out += line;
  for (size_t c = 0; c < r.columns.size(); ++c) {
    const SamBucketScores& s = r.scores[c];
    auto cell = [&](const char* b) {
      char v[32];
      if (s.miou.count(b))
        std::snprintf(v, sizeof v, "%8.3f", s.miou.at(b));
      else
        std::snprintf(v, sizeof v, "%8s", "n/a");
      return std::string(v);
    };
    std::snprintf(line, sizeof line, "%-10s %s %s %s %s\n", r.columns[c].c_str(), cell("all").c_str(),
                  cell("small").c_str(), cell("medium").c_str(), cell("large").c_str());
    out += line;
  }
  const SamBucketScores& s = r.scores.at(0);
  std::snprintf(line, sizeof line, "instances: %lld (small %lld, medium %lld, large %lld) in %lld images\n",
                (long long)s.count.at("all"), (long long)s.count.at("small"), (long long)s.count.at("medium"),
                (long long)s.count.at("large"), (long long)r.images);
  out += line;
  return out;
}

double sam_box_miou_sa1b(SamPredictor& predictor, const std::vector<data::Sa1bEntry>& entries,
                         int64_t masks_per_image, dist::Communicator* job) {
  const int ranks = job ? job->size() : 1, rank = job ? job->rank() : 0;
  // Per image, (IoU, area) of each instance scored; image i on rank i mod W.
  std::vector<std::vector<double>> per_image(entries.size());
  for (size_t i = static_cast<size_t>(rank); i < entries.size(); i += static_cast<size_t>(ranks)) {
    const data::Sa1bEntry& e = entries[i];
    data::InstanceSet set = data::read_sa1b_image(e.json_path);
    if (masks_per_image > 0 && static_cast<int64_t>(set.annotations.size()) > masks_per_image) {
      set.annotations.resize(static_cast<size_t>(masks_per_image));
      set.index();
    }
    const fs::path image(e.image_path);
    set.images.at(0).file = image.filename().string();  // the image list_sa1b paired with the file
    for (const SamInstanceScore& s : evaluate_sam(predictor, set, image.parent_path().string(), SamEvalOptions{}).instances)
      per_image[i].insert(per_image[i].end(), {s.iou.at(0), s.area});
  }
  dist::SingleProcess one;
  const std::vector<double> flat = dist::ordered_gather(job ? *job : one, per_image);
  std::vector<SamInstanceScore> all(flat.size() / 2);
  for (size_t k = 0; k < all.size(); ++k) all[k].iou = {flat[2 * k]}, all[k].area = flat[2 * k + 1];
  EVIT_CHECK(!all.empty(), "SAM box evaluation: the SA-1B annotations hold no mask of area >= 1");
  return sam_bucket_scores(all, 0).miou.at("all");
}

bool has_sa1b_annotations(const std::string& dir) {
  if (!fs::is_directory(dir)) return false;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("sa_", 0) == 0 && e.path().extension() == ".json") return true;
  }
  return false;
}

}  // namespace evit::train
