#!/usr/bin/env bash
# The main job: install what is missing, build evit, and run the demo end to end on the CPU:
#   1. segmentation: writes a procedurally generated street-scene dataset in the Cityscapes
#      layout, trains efficientvit-seg-b0 on it, evaluates mIoU on the held-out frames and writes
#      a colourised prediction;
#   2. super-resolution: trains EfficientViT-SR x2 (w0.75) on the photographs Debian's
#      scikit-image package ships and reports PSNR/SSIM against bicubic on held-out photos.
# Everything goes to runs/demo/. About 8 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEVIT_CUDA="${EVIT_CUDA:-OFF}" >/dev/null
cmake --build build -j"$jobs" --target evit
evit=./build/evit
out=runs/demo
mkdir -p "$out"

# scikit-image's sample photographs (astronaut, coffee, chelsea, ...): from the installed package
# if present, otherwise unpacked from its Debian package without installing its dependencies.
photos=/usr/lib/python3/dist-packages/skimage/data
if [ ! -d "$photos" ]; then
  photos="$out/skimage/usr/lib/python3/dist-packages/skimage/data"
  if [ ! -d "$photos" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download python3-skimage >/dev/null 2>&1) || {
      apt-get update -qq >/dev/null && (cd "$tmp" && apt-get download python3-skimage >/dev/null); }
    dpkg -x "$tmp"/python3-skimage_*.deb "$out/skimage"
    rm -rf "$tmp"
  fi
fi

# The SAM demo distils from the COCO sample images when ../shared/data is beside the repository,
# else from the generated street scenes.
coco=../shared/data/coco_val2017_samples/val2017
sam_images=()
if [ -d "$coco" ]; then sam_images=(--sam-images "$coco"); fi

echo "== data"
# Colour photographs only (the package also ships drawings, test charts and a truncated JPEG).
$evit make-demo-data "$out/data" --photos "$photos" --val astronaut coffee \
  --names astronaut coffee chelsea rocket motorcycle_left motorcycle_right hubble_deep_field ihc retina \
  --sam-val 4 "${sam_images[@]}"

echo "== segmentation: efficientvit-seg-b0 on synthetic street scenes"
$evit train configs/demo_seg.json
# The run's checkpoint, evaluated as training evaluated it (EMA weights): the same mIoU. Nothing
# in the run folder changes.
$evit eval configs/demo_seg.json
frame=$(ls "$out"/data/cityscapes/leftImg8bit/val/*/*_leftImg8bit.png | head -n 1)
$evit predict efficientvit-seg-b0-cityscapes --weights "$out/seg/checkpoint/eval_model.safetensors" \
  --protocol native --input "$frame" --output "$out/seg/prediction"

echo "== super-resolution: EfficientViT-SR x2 (w0.75) on scikit-image photographs"
$evit train configs/demo_sr.json
echo "-- held-out photos, bicubic baseline:"
$evit eval --task super_resolution --model bicubic-x2 --scale 2 --data "$out/data/photos/val"
echo "-- held-out photos, trained EfficientViT-SR:"
$evit eval --task super_resolution --model efficientvit-sr-x2-w0.75 --scale 2 --data "$out/data/photos/val" \
  --weights "$out/sr/checkpoint/eval_model.safetensors"
$evit predict efficientvit-sr-x2-w0.75 --weights "$out/sr/checkpoint/eval_model.safetensors" \
  --input "$out/data/photos/val/coffee.png" --output "$out/sr/coffee"

echo "== SAM: distilling efficientvit-sam-l0's image encoder from a small teacher (the machinery; see README)"
$evit train configs/demo_sam.json
sam_image=$(ls "$out"/data/sam/val/* | head -n 1)
$evit predict efficientvit-sam-l0 --weights "$out/sam/checkpoint/model.safetensors" --input "$sam_image" \
  --box 60,40,300,220 --points 180,130 --output "$out/sam/prediction"

echo
echo "Pictures:"
ls -1 "$out"/seg/*.png "$out"/sr/*.png "$out"/sam/*.png
