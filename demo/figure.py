"""A labelled image grid as a PNG (Pillow, no torch): rows of equally sized RGB tiles with a
header row of column titles, a row title on the left and an optional caption under each tile
(e.g. its PSNR). Used for the demos' held-out comparisons."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
#: tiles are enlarged (integer factor, nearest neighbour) to at least this width
MIN_TILE = 160


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)  # scalable (Pillow >= 10.1 with FreeType)
    except (TypeError, OSError):
        return ImageFont.load_default()


def _text_size(draw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _wrap(draw, text: str, font, width: int) -> list[str]:
    """``text`` broken at spaces into lines at most ``width`` pixels wide (a longer word stays whole)."""
    lines: list[str] = []
    for word in text.split():
        if lines and _text_size(draw, f"{lines[-1]} {word}", font)[0] <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def write_grid(path, tiles: list[list[np.ndarray]], columns: list[str], rows: list[str],
               captions: list[list[str]] | None = None, title: str = "") -> Path:
    """Write ``tiles`` (rows of HxWx3 float arrays in [0, 1] or uint8, one size) as a PNG grid.

    Args:
        path: the PNG (written to a temporary file in its folder, then renamed).
        tiles: ``tiles[r][c]``; every row has ``len(columns)`` tiles.
        columns: column titles; rows: row titles (left margin).
        captions: optional text under each tile (same shape as ``tiles``; "" for none).
        title: optional line above the column titles.

    Returns:
        ``path`` as a Path.

    Tiles narrower than :data:`MIN_TILE` pixels are enlarged by an integer factor (nearest
    neighbour) so that the titles fit; titles are wrapped to the tile width.

    Raises:
        ValueError: ragged rows, or tiles of different sizes.
    """
    if not tiles or any(len(r) != len(columns) for r in tiles) or len(rows) != len(tiles):
        raise ValueError(f"write_grid: need {len(rows)} rows of {len(columns)} tiles")
    h, w = np.asarray(tiles[0][0]).shape[:2]
    if any(np.asarray(t).shape[:2] != (h, w) for r in tiles for t in r):
        raise ValueError("write_grid: tiles must share one size")
    scale = max(1, -(-MIN_TILE // w))
    h, w = h * scale, w * scale
    font = _font(14)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line = _text_size(probe, "Ag", font)[1] + 6
    left = max(_text_size(probe, r, font)[0] for r in rows) + 10
    pad = 4
    width = left + len(columns) * (w + pad)
    title_lines = _wrap(probe, title, font, width - 8) if title else []
    heads = [_wrap(probe, name, font, w - 2) for name in columns]
    top = line * (len(title_lines) + max(len(x) for x in heads)) + 8
    cap = line if captions else 0
    img = Image.new("RGB", (width, top + len(rows) * (h + cap + pad)), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for i, text in enumerate(title_lines):
        draw.text((4, 2 + i * line), text, fill=INK, font=font)
    y0 = 4 + len(title_lines) * line
    for c, head in enumerate(heads):
        for i, text in enumerate(head):
            draw.text((left + c * (w + pad), y0 + i * line), text, fill=INK, font=font)
    for r, row in enumerate(tiles):
        y = top + r * (h + cap + pad)
        draw.text((4, y + h // 2 - line // 2), rows[r], fill=INK, font=font)
        for c, tile in enumerate(row):
            a = np.asarray(tile)
            if a.dtype != np.uint8:
                a = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
            x = left + c * (w + pad)
            if scale > 1:
                a = a.repeat(scale, axis=0).repeat(scale, axis=1)
            img.paste(Image.fromarray(a[..., :3]), (x, y))
            if captions and captions[r][c]:
                draw.text((x, y + h + 2), captions[r][c], fill=INK, font=font)
    path = Path(path)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return path
