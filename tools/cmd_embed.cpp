// `evit embed --teacher sam-vit-h --weights W --data DIR --output CACHE`: the SAM teacher's image
// embedding of every image in DIR, one f16 file per image (train/sam_embeddings.h), skipping the
// images already embedded so an interrupted run resumes where it stopped.
#include <cstdio>
#include <memory>

#include "data/dataset.h"
#include "tools/commands.h"
#include "train/progress.h"
#include "train/sam_embeddings.h"

namespace evit::cli {
namespace {
struct EmbedOptions {
  std::string teacher = "sam-vit-h", weights, data, output, device = "cpu";
  int64_t limit = 0;
};
}  // namespace

Runner add_embed_command(CLI::App& app) {
  auto o = std::make_shared<EmbedOptions>();
  auto* cmd = app.add_subcommand("embed", "Cache a SAM teacher's image embeddings of a folder of images");
  cmd->add_option("--teacher", o->teacher, "sam-vit-h (default), sam-vit-l or sam-vit-b");
  cmd->add_option("--weights", o->weights, "The released SAM checkpoint, converted to safetensors")->required();
  cmd->add_option("--data", o->data, "Folder of images (PNG or JPEG; SA-1B's sa_N.jpg included)")->required();
  cmd->add_option("--output", o->output, "Cache folder: one <image id>.safetensors per image")->required();
  cmd->add_option("--device", o->device, "Where the teacher runs: cpu, cuda or cuda:N (default cpu)");
  cmd->add_option("--limit", o->limit, "Embed only the first N images (sorted by name)");
  return [o] {
    std::vector<std::string> images = data::list_images(o->data);
    EVIT_CHECK(!images.empty(), "embed: no PNG/JPEG images in '", o->data, "'");
    if (o->limit > 0 && static_cast<int64_t>(images.size()) > o->limit) images.resize(o->limit);
    auto teacher = train::load_sam_teacher(o->teacher, o->weights);
    teacher->to(Device(o->device));
    std::printf("embedding %zu images of %s with %s (%lld parameters) on %s into %s\n", images.size(),
                o->data.c_str(), o->teacher.c_str(), (long long)teacher->num_parameters(), o->device.c_str(),
                o->output.c_str());
    std::fflush(stdout);
    std::unique_ptr<train::Progress> bar;
    const auto stats = train::embed_images(*teacher, o->teacher, images, o->output, [&](int64_t done, int64_t total) {
      if (!bar) bar = std::make_unique<train::Progress>(total, "embed");
      bar->update(done);
    });
    if (bar) bar->finish();
    std::printf("wrote %lld embeddings, skipped %lld already in %s\n", (long long)stats.written,
                (long long)stats.skipped, o->output.c_str());
    return 0;
  };
}

}  // namespace evit::cli
