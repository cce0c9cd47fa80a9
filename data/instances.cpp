#include "data/instances.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"

namespace evit::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Where a value came from, for error messages: "FILE: annotation 123: bbox".
struct Where {
  const std::string& source;
  std::string item;
  std::string str(const std::string& key) const { return source + ": " + item + (key.empty() ? "" : ": " + key); }
};

json parse_json(std::string_view text, const std::string& source) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    EVIT_THROW(source, ": not valid JSON (", e.what(), ")");
  }
}

const json& member(const json& obj, const char* key, const Where& where) {
  EVIT_CHECK(obj.is_object(), where.str(""), ": expected a JSON object");
  auto it = obj.find(key);
  EVIT_CHECK(it != obj.end(), where.str(""), ": the key \"", key, "\" is missing");
  return *it;
}

double number(const json& v, const Where& where, const std::string& key) {
  EVIT_CHECK(v.is_number(), where.str(key), " must be a number, not ", v.type_name());
  const double d = v.get<double>();
  EVIT_CHECK(std::isfinite(d), where.str(key), " must be finite");
  return d;
}

int64_t integer(const json& v, const Where& where, const std::string& key) {
  EVIT_CHECK(v.is_number_integer(), where.str(key), " must be an integer, not ", v.dump().substr(0, 40));
  return v.get<int64_t>();
}

std::array<double, 4> read_bbox(const json& v, const Where& where) {
  EVIT_CHECK(v.is_array() && v.size() == 4, where.str("bbox"), " must be [x, y, width, height]");
  std::array<double, 4> b{};
  for (size_t i = 0; i < 4; ++i) b[i] = number(v[i], where, "bbox");
  EVIT_CHECK(b[2] >= 0 && b[3] >= 0, where.str("bbox"), " has a negative size (", b[2], " x ", b[3], ")");
  return b;
}

// An RLE object {"size": [h, w], "counts": string or list}; its size must be the image's.
Rle read_rle(const json& seg, const InstanceImage& image, const Where& where) {
  const json& size = member(seg, "size", where);
  EVIT_CHECK(size.is_array() && size.size() == 2, where.str("segmentation.size"), " must be [height, width]");
  const int64_t h = integer(size[0], where, "segmentation.size"), w = integer(size[1], where, "segmentation.size");
  EVIT_CHECK(h == image.height && w == image.width, where.str("segmentation.size"), " is ", h, "x", w, " but image ",
             image.id, " is ", image.height, "x", image.width);
  const json& counts = member(seg, "counts", where);
  const std::string what = where.str("segmentation");
  if (counts.is_string()) return rle_from_string(counts.get_ref<const std::string&>(), h, w, what);
  EVIT_CHECK(counts.is_array(), what, ".counts must be a string or a list of integers");
  std::vector<int64_t> c;
  c.reserve(counts.size());
  for (const json& v : counts) c.push_back(integer(v, where, "segmentation.counts"));
  return rle_from_counts(c, h, w, what);
}

// "segmentation": a list of polygons, or an RLE object.
void read_segmentation(const json& seg, const InstanceImage& image, InstanceAnnotation& ann, const Where& where) {
  if (seg.is_object()) {
    ann.rle = read_rle(seg, image, where);
    return;
  }
  EVIT_CHECK(seg.is_array(), where.str("segmentation"), " must be a list of polygons or an RLE object");
  for (const json& part : seg) {
    EVIT_CHECK(part.is_array(), where.str("segmentation"), ": a polygon must be a list of numbers");
    std::vector<double> xy;
    xy.reserve(part.size());
    for (const json& v : part) xy.push_back(number(v, where, "segmentation"));
    EVIT_CHECK(xy.size() % 2 == 0, where.str("segmentation"), ": a polygon has an odd number of coordinates (",
               xy.size(), ")");
    ann.polygons.push_back(std::move(xy));
  }
}

InstanceImage read_image(const json& v, bool lvis, const Where& where) {
  InstanceImage im;
  im.id = integer(member(v, "id", where), where, "id");
  im.height = integer(member(v, "height", where), where, "height");
  im.width = integer(member(v, "width", where), where, "width");
  EVIT_CHECK(im.height > 0 && im.width > 0, where.str(""), ": size ", im.height, "x", im.width, " is not positive");
  if (!lvis) {
    const json& name = member(v, "file_name", where);
    EVIT_CHECK(name.is_string(), where.str("file_name"), " must be a string");
    im.file = name.get<std::string>();
  } else {
    // LVIS v1 images live in COCO's train2017/ and val2017/ folders; the URL says which.
    const json& url = member(v, "coco_url", where);
    EVIT_CHECK(url.is_string(), where.str("coco_url"), " must be a string");
    const fs::path p(url.get<std::string>());
    im.file = (p.parent_path().filename() / p.filename()).string();
  }
  EVIT_CHECK(!im.file.empty() && im.file.find("..") == std::string::npos && im.file[0] != '/', where.str(""),
             ": image file name '", im.file, "' must be a relative path inside the image folder");
  return im;
}

// Reads the annotation's id; errors from then on name it ("annotation 123").
Where read_annotation_id(const json& a, size_t i, const std::string& source, InstanceAnnotation& ann) {
  const Where at{source, "annotations[" + std::to_string(i) + "]"};
  ann.id = integer(member(a, "id", at), at, "id");
  return Where{source, "annotation " + std::to_string(ann.id)};
}

}  // namespace

void InstanceSet::index() {
  image_index_.clear();
  by_image_.clear();
  for (size_t i = 0; i < images.size(); ++i) {
    const bool fresh = image_index_.emplace(images[i].id, i).second;
    EVIT_CHECK(fresh, source, ": image id ", images[i].id, " appears twice");
    by_image_[images[i].id];
  }
  for (size_t i = 0; i < annotations.size(); ++i) {
    auto it = by_image_.find(annotations[i].image_id);
    EVIT_CHECK(it != by_image_.end(), source, ": annotation ", annotations[i].id, ": image_id ",
               annotations[i].image_id, " is not in \"images\"");
    it->second.push_back(i);
  }
}

size_t InstanceSet::image_index(int64_t image_id) const {
  auto it = image_index_.find(image_id);
  EVIT_CHECK(it != image_index_.end(), source, ": no image with id ", image_id);
  return it->second;
}

const std::vector<size_t>& InstanceSet::annotations_of(int64_t image_id) const {
  auto it = by_image_.find(image_id);
  EVIT_CHECK(it != by_image_.end(), source, ": no image with id ", image_id);
  return it->second;
}

InstanceSet parse_instances(std::string_view json_text, const std::string& source) {
  const json doc = parse_json(json_text, source);
  const Where top{source, "top level"};
  const json& images = member(doc, "images", top);
  const json& annotations = member(doc, "annotations", top);
  EVIT_CHECK(images.is_array() && annotations.is_array(), source, ": \"images\" and \"annotations\" must be lists");
  InstanceSet set;
  set.source = source;
  const bool lvis = !images.empty() && images[0].is_object() && !images[0].contains("file_name") &&
                    images[0].contains("coco_url");
  set.format = lvis ? "lvis" : "coco";
  for (size_t i = 0; i < images.size(); ++i)
    set.images.push_back(read_image(images[i], lvis, Where{source, "images[" + std::to_string(i) + "]"}));
  if (auto it = doc.find("categories"); it != doc.end()) {
    EVIT_CHECK(it->is_array(), source, ": \"categories\" must be a list");
    for (size_t i = 0; i < it->size(); ++i) {
      const Where where{source, "categories[" + std::to_string(i) + "]"};
      const json& name = member((*it)[i], "name", where);
      EVIT_CHECK(name.is_string(), where.str("name"), " must be a string");
      set.categories[integer(member((*it)[i], "id", where), where, "id")] = name.get<std::string>();
    }
  }
  set.index();  // images only, so annotations can look theirs up below
  set.annotations.reserve(annotations.size());
  for (size_t i = 0; i < annotations.size(); ++i) {
    const json& a = annotations[i];
    InstanceAnnotation ann;
    const Where where = read_annotation_id(a, i, source, ann);
    ann.image_id = integer(member(a, "image_id", where), where, "image_id");
    ann.category_id = integer(member(a, "category_id", where), where, "category_id");
    EVIT_CHECK(set.categories.empty() || set.categories.count(ann.category_id), where.str("category_id"), " ",
               ann.category_id, " is not in \"categories\"");
    ann.bbox = read_bbox(member(a, "bbox", where), where);
    ann.area = number(member(a, "area", where), where, "area");
    EVIT_CHECK(ann.area >= 0, where.str("area"), " is negative (", ann.area, ")");
    if (auto it = a.find("iscrowd"); it != a.end()) ann.iscrowd = integer(*it, where, "iscrowd") != 0;
    const InstanceImage* image = nullptr;
    try {
      image = &set.images[set.image_index(ann.image_id)];
    } catch (const Error&) {
      EVIT_THROW(where.str("image_id"), " ", ann.image_id, " is not in \"images\"");
    }
    read_segmentation(member(a, "segmentation", where), *image, ann, where);
    set.annotations.push_back(std::move(ann));
  }
  set.index();
  return set;
}

InstanceSet read_instances(const std::string& json_path) {
  return parse_instances(read_file(json_path), json_path);
}

InstanceSet parse_sa1b_image(std::string_view json_text, const std::string& source) {
  const json doc = parse_json(json_text, source);
  const Where top{source, "top level"};
  InstanceSet set;
  set.source = source;
  set.format = "sa1b";
  set.categories[1] = "object";
  const json& image = member(doc, "image", top);
  const Where image_where{source, "image"};
  InstanceImage im;
  im.id = integer(member(image, "image_id", image_where), image_where, "image_id");
  im.height = integer(member(image, "height", image_where), image_where, "height");
  im.width = integer(member(image, "width", image_where), image_where, "width");
  EVIT_CHECK(im.height > 0 && im.width > 0, image_where.str(""), ": size ", im.height, "x", im.width,
             " is not positive");
  const json& name = member(image, "file_name", image_where);
  EVIT_CHECK(name.is_string(), image_where.str("file_name"), " must be a string");
  im.file = name.get<std::string>();
  set.images.push_back(im);
  const json& annotations = member(doc, "annotations", top);
  EVIT_CHECK(annotations.is_array(), source, ": \"annotations\" must be a list");
  for (size_t i = 0; i < annotations.size(); ++i) {
    const json& a = annotations[i];
    InstanceAnnotation ann;
    const Where where = read_annotation_id(a, i, source, ann);
    ann.image_id = im.id;
    ann.category_id = 1;
    ann.bbox = read_bbox(member(a, "bbox", where), where);
    ann.area = number(member(a, "area", where), where, "area");
    const json& seg = member(a, "segmentation", where);
    EVIT_CHECK(seg.is_object(), where.str("segmentation"), " must be an RLE object");
    ann.rle = read_rle(seg, im, where);
    if (auto it = a.find("point_coords"); it != a.end()) {
      EVIT_CHECK(it->is_array(), where.str("point_coords"), " must be a list of [x, y]");
      for (const json& p : *it) {
        EVIT_CHECK(p.is_array() && p.size() == 2, where.str("point_coords"), " must be a list of [x, y]");
        ann.point_coords.push_back({number(p[0], where, "point_coords"), number(p[1], where, "point_coords")});
      }
    }
    if (auto it = a.find("predicted_iou"); it != a.end()) ann.predicted_iou = number(*it, where, "predicted_iou");
    if (auto it = a.find("stability_score"); it != a.end())
      ann.stability_score = number(*it, where, "stability_score");
    set.annotations.push_back(std::move(ann));
  }
  set.index();
  return set;
}

InstanceSet read_sa1b_image(const std::string& json_path) {
  return parse_sa1b_image(read_file(json_path), json_path);
}

std::vector<Sa1bEntry> list_sa1b(const std::string& dir) {
  EVIT_CHECK(fs::is_directory(dir), "SA-1B folder '", dir, "' does not exist or is not a folder");
  std::vector<std::pair<int64_t, Sa1bEntry>> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("sa_", 0) != 0 || e.path().extension() != ".json") continue;
    const std::string stem = e.path().stem().string().substr(3);
    if (stem.empty() || !std::all_of(stem.begin(), stem.end(), [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    fs::path image = e.path();
    image.replace_extension(".jpg");
    EVIT_CHECK(fs::is_regular_file(image), "SA-1B annotation '", e.path().string(), "' has no image '",
               image.string(), "'");
    found.push_back({std::stoll(stem), Sa1bEntry{e.path().string(), image.string()}});
  }
  EVIT_CHECK(!found.empty(), "SA-1B folder '", dir, "' holds no sa_N.json annotation files");
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Sa1bEntry> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

Rle annotation_mask(const InstanceSet& set, const InstanceAnnotation& ann) {
  if (ann.rle) return *ann.rle;
  const InstanceImage& image = set.images[set.image_index(ann.image_id)];
  const std::string what = set.source + ": annotation " + std::to_string(ann.id);
  std::vector<Rle> parts;
  parts.reserve(ann.polygons.size());
  for (const auto& xy : ann.polygons) parts.push_back(rle_from_polygon(xy, image.height, image.width, what));
  if (parts.empty()) return Rle{image.height, image.width, {static_cast<uint32_t>(image.height * image.width)}};
  return rle_merge(parts, false, what);
}

}  // namespace evit::data
