// Limits on sizes that come from user input (files, image headers, config keys, shapes), checked
// before anything is allocated, so a hostile or mistaken input fails at once with a message naming
// the file or key instead of exhausting memory. Each limit has a documented default and an
// environment variable that overrides it (a positive integer; see docs/reliability.md):
//
//   EVIT_MAX_FILE_BYTES     files read whole (weights, images, configs): 16 GiB
//   EVIT_MAX_IMAGE_PIXELS   decoded images and resize targets: 100,000,000 pixels (10000 x 10000)
//   EVIT_MAX_TENSOR_BYTES   one CPU tensor: the machine's physical memory
#pragma once
#include <cstdint>
#include <string>

namespace evit {

int64_t max_file_bytes();
int64_t max_image_pixels();
int64_t max_tensor_bytes();

// Throws unless an h x w image fits EVIT_MAX_IMAGE_PIXELS; `what` names the image ("the image",
// "'a.png' resized to the crop") and starts the message.
void check_image_pixels(int64_t h, int64_t w, const std::string& what);

// "1.5 GiB": sizes in messages.
std::string human_bytes(double bytes);

}  // namespace evit
