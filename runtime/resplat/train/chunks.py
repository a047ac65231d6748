"""Loader of the pixelSplat / DepthSplat chunk format of RealEstate10K and DL3DV.

Format (pixelSplat ``src/dataset/dataset_re10k.py``; DepthSplat keeps it): a folder of
``*.torch`` files, each a ``torch.save``d list of scene dicts with ``"key"`` (str), ``"url"``,
``"timestamps"`` (int64 [N]), ``"cameras"`` (float [N, 18]: fx, fy, cx, cy normalised by the
image width/height, 2 unused, then the 3x4 world-to-camera matrix row-major, OpenCV axes) and
``"images"`` (list of N uint8 tensors holding JPEG bytes). Such files are plain tensors,
strings and lists, so they are read with ``torch.load(weights_only=True)``; a file that needs
full unpickling is refused (unpickling can run arbitrary code): re-save it as plain tensors,
strings and lists.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from ..cameras import Cameras
from ..errors import ResplatError


class ChunkFormatError(ResplatError, ValueError):
    """A chunk file or scene that is not in the pixelSplat format (one line naming it)."""


def read_chunk(path: str | Path) -> list[dict]:
    """The scene dicts of one ``.torch`` chunk (module docstring).

    Raises:
        ChunkFormatError: unreadable file, a file needing full unpickling, or entries lacking
            ``key``/``cameras``/``images``.
    """
    p = Path(path)
    try:
        chunk = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        if "weights only load failed" in str(exc).lower():
            raise ChunkFormatError(f"{p}: holds Python objects beyond tensors, strings and lists; we never unpickle "
                                   "them (that can run code): re-save the chunk with plain types") from None
        raise ChunkFormatError(f"{p}: not a readable chunk file ({type(exc).__name__})") from None
    if not isinstance(chunk, list) or not all(isinstance(s, dict) and {"key", "cameras", "images"} <= s.keys() for s in chunk):
        raise ChunkFormatError(f"{p}: expected a list of scene dicts with key, cameras and images")
    return chunk


def decode_scene(scene: dict, size: tuple[int, int] | None = None, where: str = "") -> tuple[torch.Tensor, Cameras]:
    """Decode one scene dict: images [N, 3, H, W] float in [0, 1] and :class:`Cameras` (pixel
    intrinsics, OpenCV w2c). With ``size`` = (H, W) every image is centre-cropped to that
    aspect ratio and resized (bilinear, antialiased), the intrinsics following.

    Raises:
        ChunkFormatError: cameras not [N, 18], image count not N, undecodable JPEG bytes.
    """
    from PIL import Image

    cams = scene["cameras"].to(torch.float64)
    n = len(scene["images"])
    name = f"{where}scene {scene['key']!r}"
    if cams.dim() != 2 or cams.shape != (n, 18):
        raise ChunkFormatError(f"{name}: cameras must be [{n}, 18], got {list(cams.shape)}")
    imgs = []
    for i, raw in enumerate(scene["images"]):
        try:
            im = Image.open(io.BytesIO(raw.numpy().tobytes())).convert("RGB")
        except Exception:
            raise ChunkFormatError(f"{name}: image {i} is not decodable JPEG/PNG bytes") from None
        imgs.append(im)
    w0, h0 = imgs[0].size
    K = torch.zeros(n, 3, 3, dtype=torch.float64)
    K[:, 0, 0], K[:, 1, 1] = cams[:, 0] * w0, cams[:, 1] * h0
    K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = cams[:, 2] * w0, cams[:, 3] * h0, 1
    if size is not None:
        h, w = size
        s = max(h / h0, w / w0)
        cw, ch = w / s, h / s  # crop box in source pixels
        x0, y0 = (w0 - cw) / 2, (h0 - ch) / 2
        imgs = [im.resize((w, h), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch)) for im in imgs]
        K[:, 0, 0] *= s
        K[:, 1, 1] *= s
        K[:, 0, 2] = (K[:, 0, 2] - x0) * s
        K[:, 1, 2] = (K[:, 1, 2] - y0) * s
        w0, h0 = w, h
    w2c = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    w2c[:, :3, :4] = cams[:, 6:].reshape(n, 3, 4)
    images = torch.from_numpy(np.stack([np.asarray(im) for im in imgs])).permute(0, 3, 1, 2).float() / 255
    return images, Cameras(w2c.float(), K.float(), w0, h0)


class ChunkDataset:
    """Training examples from a folder of chunk files, in the ``SceneSample`` attributes.

    Example ``i`` is scene ``i`` (files sorted by name, scenes in file order): ``context``
    views evenly spread over a window of consecutive frames and ``target`` views drawn inside
    it (random with seed ``seed`` and ``i``, so the same every time), decoded and resized to
    ``size``. ``depths`` is None (these datasets have no depth). Only one chunk is kept in
    memory.

    Raises:
        ChunkFormatError: no chunk files, unreadable chunks, scenes with too few frames.
    """

    def __init__(self, root: str | Path, context: int = 8, target: int = 4, size: tuple[int, int] = (256, 256),
                 window: int = 60, seed: int = 0):
        self.files = sorted(Path(root).glob("*.torch"))
        if not self.files:
            raise ChunkFormatError(f"{root}: no *.torch chunk files")
        self.context, self.target, self.size, self.window, self.seed = context, target, size, window, seed
        self.index = [(f, j) for f in self.files for j in range(len(read_chunk(f)))]
        self._cached: tuple[Path, list] | None = None

    def __len__(self) -> int:
        return len(self.index)

    def _chunk(self, f: Path) -> list:
        if self._cached is None or self._cached[0] != f:
            self._cached = (f, read_chunk(f))
        return self._cached[1]

    def __getitem__(self, i: int) -> SimpleNamespace:
        f, j = self.index[i]
        scene = self._chunk(f)[j]
        n = len(scene["images"])
        need = self.context + self.target
        if n < need:
            raise ChunkFormatError(f"{f.name}: scene {scene['key']!r} has {n} frames, {need} needed")
        rng = random.Random(self.seed * 1_000_003 + i)
        span = min(n, max(self.window, need))
        start = rng.randrange(n - span + 1)
        ctx = [start + round(k * (span - 1) / (self.context - 1)) for k in range(self.context)]
        rest = [k for k in range(start, start + span) if k not in ctx]
        tgt = sorted(rng.sample(rest, self.target))
        frames = ctx + tgt
        sub = dict(scene, images=[scene["images"][k] for k in frames], cameras=scene["cameras"][frames])
        images, cams = decode_scene(sub, self.size, f"{f.name}: ")
        c = len(ctx)
        return SimpleNamespace(images=images, depths=None, cameras=cams, context=list(range(c)),
                               target=list(range(c, c + self.target)))
