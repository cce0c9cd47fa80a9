#include "tests/support/sa1b_data.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "data/coco_rle.h"

namespace evit::test {

void write_sa1b_image(const std::string& dir, int id, const Image& image, const std::vector<std::vector<uint8_t>>& masks) {
  const int64_t h = image.height, w = image.width;
  nlohmann::json anns = nlohmann::json::array();
  for (size_t k = 0; k < masks.size(); ++k) {
    const data::Rle rle = data::rle_encode(masks[k].data(), h, w);
    const auto box = data::rle_bbox(rle);
    anns.push_back({{"id", 100 * id + static_cast<int>(k)},
                    {"segmentation", {{"size", {h, w}}, {"counts", data::rle_to_string(rle)}}},
                    {"bbox", {box[0], box[1], box[2], box[3]}},
                    {"area", data::rle_area(rle)},
                    {"point_coords", {{box[0] + 1, box[1] + 1}}}});
  }
  const std::string name = "sa_" + std::to_string(id);
  encode_png((std::filesystem::path(dir) / (name + ".jpg")).string(), image);
  const nlohmann::json doc = {
      {"image", {{"image_id", id}, {"width", w}, {"height", h}, {"file_name", name + ".jpg"}}}, {"annotations", anns}};
  write_file_atomic((std::filesystem::path(dir) / (name + ".json")).string(), doc.dump());
}

void write_sa1b_scene(const std::string& dir, int id) {
  const int64_t h = 48, w = 64;
  Image im(h, w, 3);
  std::vector<std::vector<uint8_t>> masks(3, std::vector<uint8_t>(h * w, 0));
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const int64_t i = y * w + x;
      masks[0][i] = x >= 4 + id && x < 24 + id && y >= 6 && y < 30;
      masks[1][i] = (x - 44) * (x - 44) + (y - 30 + id) * (y - 30 + id) < 100;
      masks[2][i] = y >= 40 && y < 43 && x >= 10;
      const int shape = masks[0][i] ? 1 : masks[1][i] ? 2 : masks[2][i] ? 3 : 0;
      for (int64_t c = 0; c < 3; ++c)
        im.data[i * 3 + c] = static_cast<uint8_t>(shape ? 60 * shape + 30 * c : (x * 2 + y * (c + 1) + 9 * id) % 200);
    }
  write_sa1b_image(dir, id, im, masks);
}

}  // namespace evit::test
