"""The benchmark cases shared by the PyTorch twin and the table printer. bench_ops.cpp defines
the same cases (same names, shapes and parameters); keep them in step.

Shapes are EfficientViT-B1's for a 512x1024 input: stage 3 features are
[1,128,32,64] (LiteMLA: 8 heads of dim 16, qkv 384 channels, aggregated branch 384 channels),
MBConv expands to 512 channels; stage 4 is [1,256,16,32]. The batch-16 cases are
EfficientViT-B0's training shapes at 224x224 (an MBConv of stage 1 expanded to 64 channels at
112x112 before its stride-2 depthwise; stage 2's expanded depthwise; a ConvLayer's BatchNorm +
hardswish).
"""
WARMUP = 3
RUNS = 15

CASES = [
    {"name": "conv2d 1x1 128->512 [1,128,32,64]", "kind": "conv",
     "shapes": [[1, 128, 32, 64], [512, 128, 1, 1]], "stride": 1, "padding": 0, "groups": 1},
    {"name": "depthwise 5x5 [1,384,32,64]", "kind": "conv",
     "shapes": [[1, 384, 32, 64], [384, 1, 5, 5]], "stride": 1, "padding": 2, "groups": 384},
    {"name": "depthwise 3x3 [1,512,32,64]", "kind": "conv",
     "shapes": [[1, 512, 32, 64], [512, 1, 3, 3]], "stride": 1, "padding": 1, "groups": 512},
    {"name": "grouped 1x1 g=24 [1,384,32,64]", "kind": "conv",
     "shapes": [[1, 384, 32, 64], [384, 16, 1, 1]], "stride": 1, "padding": 0, "groups": 24},
    {"name": "linear_attention [1,16,16,2048]", "kind": "linear_attention",
     "shapes": [[1, 16, 16, 2048]] * 3},
    {"name": "batch_norm train [1,128,32,64]", "kind": "batch_norm",
     "shapes": [[1, 128, 32, 64], [128], [128]]},
    {"name": "batch_norm+hardswish train [16,64,56,56]", "kind": "batch_norm_hardswish",
     "shapes": [[16, 64, 56, 56], [64], [64]]},
    {"name": "batch_norm+hardswish train [16,32,112,112]", "kind": "batch_norm_hardswish",
     "shapes": [[16, 32, 112, 112], [32], [32]]},
    {"name": "depthwise 3x3 s2 [16,64,112,112]", "kind": "conv",
     "shapes": [[16, 64, 112, 112], [64, 1, 3, 3]], "stride": 2, "padding": 1, "groups": 64},
    {"name": "depthwise 3x3 [16,128,28,28]", "kind": "conv",
     "shapes": [[16, 128, 28, 28], [128, 1, 3, 3]], "stride": 1, "padding": 1, "groups": 128},
    {"name": "conv2d 1x1 128->512 [16,128,7,7]", "kind": "conv",
     "shapes": [[16, 128, 7, 7], [512, 128, 1, 1]], "stride": 1, "padding": 0, "groups": 1},
    {"name": "conv2d 1x1 256->64 [16,256,14,14]", "kind": "conv",
     "shapes": [[16, 256, 14, 14], [64, 256, 1, 1]], "stride": 1, "padding": 0, "groups": 1},
    {"name": "conv2d 1x1 128->512 [16,128,14,14]", "kind": "conv",
     "shapes": [[16, 128, 14, 14], [512, 128, 1, 1]], "stride": 1, "padding": 0, "groups": 1},
    {"name": "conv2d 1x1 512->128 [16,512,14,14]", "kind": "conv",
     "shapes": [[16, 512, 14, 14], [128, 512, 1, 1]], "stride": 1, "padding": 0, "groups": 1},
    {"name": "conv2d 1x1 64->256 [16,64,28,28]", "kind": "conv",
     "shapes": [[16, 64, 28, 28], [256, 64, 1, 1]], "stride": 1, "padding": 0, "groups": 1},
    {"name": "hardswish [1,512,32,64]", "kind": "hardswish", "shapes": [[1, 512, 32, 64]]},
    {"name": "matmul [2048,128]x[128,512]", "kind": "matmul", "shapes": [[2048, 128], [128, 512]]},
]
