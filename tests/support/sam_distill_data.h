// Data for the sam_distill tests: images, an SA-1B scene and a tiny teacher's embeddings.
#pragma once
#include <string>

namespace evit::test {

// Images in ROOT/train (4) and ROOT/val (2, plus an SA-1B scene with annotations, sa_7), and the
// embeddings of a tiny SAM-ViT teacher (2x2 patches of 128x128, two blocks) of all of them in
// ROOT/cache, under the temporary folder `name`, made once. ctest runs tests in parallel
// processes: each writes the set into a folder of its own and renames it into place, so none
// reads a half-written set. Returns ROOT.
std::string distill_data(const std::string& name);

}  // namespace evit::test
