// A procedurally generated street-scene segmentation dataset in the official Cityscapes layout,
// for demos, smoke tests and CI where the real data set is not available.
//
// Every frame is a simple perspective street: sky at the top, buildings with window grids along
// the horizon, a road that widens towards the bottom with sidewalks on both sides, vegetation
// blobs, poles (some carrying a traffic sign) and cars as rounded boxes. Each object draws its
// colour around a class colour with per-object variation, texture, per-pixel noise and a global
// illumination factor, so that colour alone does not decide the class and a model has to use
// shape and context. Labels are Cityscapes labelIds (sky 23, road 7, sidewalk 8, building 11,
// vegetation 21, pole 17, traffic sign 20, car 26), so data::cityscapes() maps them to trainIds.
//
// The output depends only on (n_train, n_val, height, width, seed): the same arguments give
// byte-identical files.
#pragma once
#include <cstdint>
#include <string>

namespace evit::data {

// Writes root/leftImg8bit/{train,val}/<city>/<stem>_leftImg8bit.png (RGB) and
// root/gtFine/{train,val}/<city>/<stem>_gtFine_labelIds.png (8-bit gray labelIds); frames are
// spread over two cities per split. Existing files with the same names are overwritten.
// Sizes must be at least 32 x 32.
void write_synthetic_cityscapes(const std::string& root, int64_t n_train, int64_t n_val,
                                int64_t height, int64_t width, uint64_t seed);

}  // namespace evit::data
