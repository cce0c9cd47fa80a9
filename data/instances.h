// Instance annotations with masks, as SAM training and evaluation read them: COCO instances
// JSON (val2017 / train2017), LVIS v1 JSON, and SA-1B's one JSON per image.
//
// Every annotation is checked when the file is read, so that a malformed one is an error naming
// the file and the annotation id (not a crash or a wrong mask later): bounding boxes of four
// finite numbers with non-negative size, polygons of an even number of finite coordinates,
// RLE masks whose counts sum to the image's pixel count, ids that exist. Polygons are rasterised
// when a mask is asked for (annotation_mask), with pycocotools' exact rasterisation.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/coco_rle.h"

namespace evit::data {

struct InstanceImage {
  int64_t id = 0;
  std::string file;  // relative to the image root: COCO's file_name; LVIS: "<split>/<name>" of coco_url
  int64_t height = 0, width = 0;
};

struct InstanceAnnotation {
  int64_t id = 0, image_id = 0, category_id = 0;
  std::array<double, 4> bbox{};  // x, y, width, height in pixels
  double area = 0;               // as the file states it (COCO buckets small/medium/large by it)
  bool iscrowd = false;
  std::vector<std::vector<double>> polygons;  // the parts, when the mask is given as polygons
  std::optional<Rle> rle;                     // the mask, when given as RLE (crowd, LVIS RLE, SA-1B)
  // SA-1B only: the point the mask was generated from, and the generator's scores.
  std::vector<std::array<double, 2>> point_coords;
  double predicted_iou = 0, stability_score = 0;
};

struct InstanceSet {
  std::string source;  // the JSON file
  std::string format;  // "coco", "lvis" or "sa1b"
  std::vector<InstanceImage> images;
  std::vector<InstanceAnnotation> annotations;  // in file order
  std::map<int64_t, std::string> categories;    // id -> name

  // Index of the image with this id in `images`; throws naming the id when there is none.
  size_t image_index(int64_t image_id) const;
  // Indices into `annotations` of one image's annotations, in file order.
  const std::vector<size_t>& annotations_of(int64_t image_id) const;

  // Builds the lookups above; the readers call it.
  void index();

 private:
  std::unordered_map<int64_t, size_t> image_index_;
  std::unordered_map<int64_t, std::vector<size_t>> by_image_;
};

// A COCO instances or LVIS v1 file (told apart by LVIS's coco_url images without file_name).
InstanceSet read_instances(const std::string& json_path);
InstanceSet parse_instances(std::string_view json_text, const std::string& source);

// One SA-1B image's annotations (sa_N.json: "image" and "annotations"; category 1 = "object").
InstanceSet read_sa1b_image(const std::string& json_path);
InstanceSet parse_sa1b_image(std::string_view json_text, const std::string& source);

// An SA-1B folder: its sa_N.json files (sorted by N) with the image each names; an annotation file
// without its image is an error naming both.
struct Sa1bEntry {
  std::string json_path, image_path;
};
std::vector<Sa1bEntry> list_sa1b(const std::string& dir);

// The annotation's mask at its image's size (pycocotools' annToRLE: the union of the polygon
// parts, or the RLE as given).
Rle annotation_mask(const InstanceSet& set, const InstanceAnnotation& ann);

}  // namespace evit::data
