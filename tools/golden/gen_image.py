"""Reference data for evit's image codecs and .npy reader (tests/test_image.cpp, tag [image]).

Run: /usr/bin/python3 tools/golden/gen_image.py
Writes tests/golden/image.safetensors and tests/golden/npy/*.npy.

- png_<case>.bytes / .expected: small PNGs written by the hand-made encoder below (every colour
  type, bit depths 1..16, PLTE/tRNS, Adam7 interlacing; all filters 'None'), with the pixels a
  decoder must produce (tRNS expanded to alpha, sub-byte gray scaled to 8 bits, 16-bit kept; the
  16-bit ones are stored as i32). The encoder is independent of libpng; PIL re-reads the 8-bit
  ones as a cross-check.
- pngbad_<case>.bytes: structurally broken PNGs with valid chunk CRCs.
- shared_<file>.*: PIL's decode of files in ../shared/data/codec_samples (full pixels for small
  files, every 16th pixel otherwise, plus the mean absolute difference of every JPEG variant of
  the flower photo from flower.png, computed here on PIL's decodes).
- npy_<case>.expected: the arrays written to tests/golden/npy/<case>.npy by numpy.
"""
import os
import struct
import sys
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import GOLDEN_DIR, Golden  # noqa: E402

g = Golden("image")
rng = np.random.default_rng(99)
# The sample data lives in ../shared/data beside the repository; EVIT_SHARED_DATA overrides it.
SHARED = os.environ.get("EVIT_SHARED_DATA",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data"))

# ---- a minimal PNG encoder -----------------------------------------------------------------
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def pack_row(row, depth):
    row = row.reshape(-1)
    if depth == 16:
        return row.astype(">u2").tobytes()
    if depth == 8:
        return row.astype(np.uint8).tobytes()
    per = 8 // depth
    out = bytearray((len(row) + per - 1) // per)
    for i, v in enumerate(row):
        out[i // per] |= int(v) << (8 - depth * (i % per + 1))
    return bytes(out)


def png(samples, color, depth, plte=None, trns=None, interlace=False, idat=None, ihdr=None):
    h, w = samples.shape[:2]
    raw = b""
    for x0, y0, dx, dy in (ADAM7 if interlace else [(0, 0, 1, 1)]):
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        for r in sub:
            raw += b"\x00" + pack_row(r, depth)
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", ihdr or struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, int(interlace)))
    if plte is not None:
        out += chunk(b"PLTE", plte.astype(np.uint8).tobytes())
    if trns is not None:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", idat if idat is not None else zlib.compress(raw, 9))
    out += chunk(b"IEND", b"")
    return out


def add_png(name, data, expected):
    g.add("png_" + name, "bytes", torch.from_numpy(np.frombuffer(data, dtype=np.uint8).copy()))
    exp = expected.astype(np.int32) if expected.dtype == np.uint16 else expected.astype(np.uint8)
    g.add("png_" + name, "expected", torch.from_numpy(np.ascontiguousarray(exp)))
    if expected.dtype == np.uint8:  # cross-check the encoder with PIL
        from PIL import Image
        import io
        im = Image.open(io.BytesIO(data))
        if im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif "transparency" in im.info:
            im = im.convert("LA" if im.mode in ("L", "1") else "RGBA")
        elif im.mode == "1":
            im = im.convert("L")
        a = np.array(im)
        a = a.reshape(expected.shape)
        assert np.array_equal(a, expected), name


def u(shape, hi):
    return rng.integers(0, hi, size=shape)


# Both passes of this loop draw the same random sequence, so "<case>" and "<case>_i" hold the
# same pixels (non-interlaced / Adam7 twins).
for interlace in (False, True):
    rng = np.random.default_rng(7)
    sfx = "_i" if interlace else ""
    H, W = 13, 11
    s = u((H, W, 1), 256).astype(np.uint8); add_png("gray8" + sfx, png(s, 0, 8, interlace=interlace), s)
    s = u((H, W, 1), 65536).astype(np.uint16); add_png("gray16" + sfx, png(s, 0, 16, interlace=interlace), s)
    s = u((H, W, 3), 256).astype(np.uint8); add_png("rgb8" + sfx, png(s, 2, 8, interlace=interlace), s)
    s = u((H, W, 3), 65536).astype(np.uint16); add_png("rgb16" + sfx, png(s, 2, 16, interlace=interlace), s)
    s = u((H, W, 2), 256).astype(np.uint8); add_png("ga8" + sfx, png(s, 4, 8, interlace=interlace), s)
    s = u((H, W, 2), 65536).astype(np.uint16); add_png("ga16" + sfx, png(s, 4, 16, interlace=interlace), s)
    s = u((H, W, 4), 256).astype(np.uint8); add_png("rgba8" + sfx, png(s, 6, 8, interlace=interlace), s)
    s = u((H, W, 4), 65536).astype(np.uint16); add_png("rgba16" + sfx, png(s, 6, 16, interlace=interlace), s)
    for d in (1, 2, 4):
        s = u((H, W, 1), 2 ** d)
        add_png(f"gray{d}" + sfx, png(s, 0, d, interlace=interlace), (s * (255 // (2 ** d - 1))).astype(np.uint8))
    # Palette without / with tRNS (shorter than the palette: later entries are opaque).
    for d in (1, 2, 4, 8):
        n = 2 ** d if d < 8 else 200
        pal = u((n, 3), 256)
        idx = u((H, W, 1), n)
        add_png(f"pal{d}" + sfx, png(idx, 3, d, plte=pal, interlace=interlace), pal[idx[..., 0]].astype(np.uint8))
        alpha = u((max(1, n // 2),), 256)
        full_a = np.concatenate([alpha, np.full(n - len(alpha), 255)])
        exp = np.concatenate([pal[idx[..., 0]], full_a[idx[..., 0]][..., None]], axis=2)
        add_png(f"pal{d}_trns" + sfx, png(idx, 3, d, plte=pal, trns=alpha.astype(np.uint8).tobytes(),
                                          interlace=interlace), exp.astype(np.uint8))
    # tRNS on gray and RGB: the one transparent colour becomes alpha 0, the rest alpha 255.
    s = u((H, W, 1), 8).astype(np.uint8)
    exp = np.concatenate([s, np.where(s == 5, 0, 255).astype(np.uint8)], axis=2)
    add_png("gray8_trns" + sfx, png(s, 0, 8, trns=struct.pack(">H", 5), interlace=interlace), exp)
    s = u((H, W, 3), 2).astype(np.uint8)
    key = np.all(s == [1, 0, 1], axis=2)
    exp = np.concatenate([s, np.where(key, 0, 255).astype(np.uint8)[..., None]], axis=2)
    add_png("rgb8_trns" + sfx, png(s, 2, 8, trns=struct.pack(">HHH", 1, 0, 1), interlace=interlace), exp)

rng = np.random.default_rng(8)
# Tiny interlaced images: most Adam7 passes are empty.
for (h, w) in [(1, 1), (2, 3), (5, 1)]:
    s = u((h, w, 3), 256).astype(np.uint8)
    add_png(f"tiny_{h}x{w}_i", png(s, 2, 8, interlace=True), s)

# ---- broken PNGs (valid CRCs, invalid content) ----------------------------------------------
def add_bad(name, data):
    g.add("pngbad_" + name, "bytes", torch.from_numpy(np.frombuffer(data, dtype=np.uint8).copy()))


s = u((8, 8, 3), 256).astype(np.uint8)
add_bad("zero_width", png(s, 2, 8, ihdr=struct.pack(">IIBBBBB", 0, 8, 8, 2, 0, 0, 0)))
add_bad("bad_depth", png(s, 2, 8, ihdr=struct.pack(">IIBBBBB", 8, 8, 3, 2, 0, 0, 0)))
add_bad("bad_zlib", png(s, 2, 8, idat=b"\x78\x9c" + bytes(range(40))))
short = zlib.compress(b"\x00" + bytes(24) * 3, 9)  # 3 of 8 rows
add_bad("short_idat", png(s, 2, 8, idat=short))
add_bad("missing_plte", png(u((8, 8, 1), 4), 3, 2))

# ---- a CMYK JPEG (Adobe, inverted) written by PIL, with PIL's RGB conversion of it -------------
import io  # noqa: E402

from PIL import Image  # noqa: E402

cmyk = np.kron(rng.integers(0, 256, (4, 4, 4)).astype(np.uint8), np.ones((4, 4, 1), np.uint8))
buf = io.BytesIO()
Image.fromarray(cmyk, "CMYK").save(buf, "JPEG", quality=100, subsampling=0)
g.add("jpeg_cmyk", "bytes", torch.from_numpy(np.frombuffer(buf.getvalue(), dtype=np.uint8).copy()))
g.add("jpeg_cmyk", "expected", torch.from_numpy(np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))))

# ---- PIL decodes of the shared codec samples --------------------------------------------------
from PIL import Image  # noqa: E402


def pil_array(path):
    im = Image.open(path)
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif "transparency" in im.info:
        im = im.convert("LA" if im.mode == "L" else "RGBA")
    a = np.array(im)
    return a if a.ndim == 3 else a[..., None]


codec = os.path.join(SHARED, "codec_samples")
if os.path.isdir(codec):
    for sub in ("pngsuite", "palette", "gray_and_alpha", "flower"):
        for f in sorted(os.listdir(os.path.join(codec, sub))):
            a = pil_array(os.path.join(codec, sub, f))
            key = "shared_" + f.replace(".", "_")
            g.add(key, "shape", torch.tensor(a.shape, dtype=torch.int64))
            full = a.shape[0] * a.shape[1] <= 64 * 64
            g.add(key, "pixels" if full else "grid16", torch.from_numpy(np.ascontiguousarray(a if full else a[::16, ::16])))
    ref = pil_array(os.path.join(codec, "flower", "flower.png")).astype(np.float64)
    gray_ref = np.round(ref @ np.array([0.299, 0.587, 0.114]))[..., None]
    for f in sorted(os.listdir(os.path.join(codec, "flower"))):
        if f.startswith("flower.png.im_q85_"):
            a = pil_array(os.path.join(codec, "flower", f)).astype(np.float64)
            r = gray_ref if a.shape[2] == 1 else ref
            g.add("shared_" + f.replace(".", "_"), "mad_vs_png", torch.tensor([np.abs(a - r).mean()], dtype=torch.float64))

# ---- .npy files written by numpy -----------------------------------------------------------
npy_dir = os.path.join(GOLDEN_DIR, "npy")
os.makedirs(npy_dir, exist_ok=True)


def save(name, a, version=None):
    with open(os.path.join(npy_dir, name + ".npy"), "wb") as f:
        if version is None:
            np.save(f, a)
        else:
            np.lib.format.write_array(f, a, version=version)


good = {
    "f4": rng.standard_normal((2, 3)).astype("<f4"),
    "f8": rng.standard_normal((4, 1, 2)),
    "i8": np.array([-(2 ** 40), -1, 0, 7, 2 ** 62], dtype="<i8"),
    "i4": rng.integers(-1000, 1000, (2, 2, 2)).astype("<i4"),
    "u1": rng.integers(0, 256, (3, 5)).astype(np.uint8),
    "b1": np.array([True, False, True, True]),
    "scalar_f8": np.array(3.25),
    "empty_f4": np.zeros((0, 3), dtype="<f4"),
}
for name, a in good.items():
    save(name, a)
    t = torch.from_numpy(np.array(a, order="C", copy=True))  # keeps 0-d (ascontiguousarray would not)
    g.add("npy_" + name, "expected", t)
save("v2_f4", good["f4"], version=(2, 0))
save("v3_f4", good["f4"], version=(3, 0))
# Malformed / unsupported.
save("bad_fortran", np.asfortranarray(rng.standard_normal((3, 2)).astype("<f4")))
save("bad_bigendian", good["f4"].astype(">f4"))
save("bad_complex", np.ones(3, dtype=np.complex64))
save("bad_u2", np.ones(3, dtype="<u2"))
with open(os.path.join(npy_dir, "f4.npy"), "rb") as f:
    data = f.read()
with open(os.path.join(npy_dir, "bad_truncated.npy"), "wb") as f:
    f.write(data[:-5])
with open(os.path.join(npy_dir, "bad_trailing.npy"), "wb") as f:
    f.write(data + b"\0\0\0\0")
with open(os.path.join(npy_dir, "bad_magic.npy"), "wb") as f:
    f.write(b"\x93NUMPX" + data[6:])
with open(os.path.join(npy_dir, "bad_header.npy"), "wb") as f:
    f.write(data.replace(b"'shape': (2, 3)", b"'shape': (2; 3)"))
g.write()
