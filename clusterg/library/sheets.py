"""Contact sheets: one PNG of face thumbnails per cluster, most confident first, for a quick look."""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Sequence

from .._atomic import atomic_path
from .._validate import ClustergError

__all__ = ["contact_sheet", "SHEET_NAME"]

logger = logging.getLogger("clusterg.library")

#: File name of the contact sheet in each cluster folder of ``--export-folders``.
SHEET_NAME = "_contact_sheet.png"


def contact_sheet(items: Sequence[tuple[str | os.PathLike, Sequence[int] | None, float]], out_png: str | os.PathLike,
                  thumb: int = 96, cols: int = 8, max_faces: int = 64) -> int:
    """Write a grid of thumbnails to ``out_png``; returns how many it shows.

    Args:
        items: ``(photo path, face box (left, top, right, bottom) or None, confidence)``;
            shown by descending confidence (least confident last, ties in the given order);
            a box is cropped with a margin of half its size, else the whole photo is shown.
        out_png: the PNG to write (atomically).
        thumb: thumbnail side in pixels (default 96); ``cols`` per row (default 8);
            at most ``max_faces`` thumbnails (the least confident are kept when there are
            more: one from each end of the order, the middle dropped).

    Under each thumbnail a bar shows its confidence (full width = 1).
    """
    from PIL import Image, ImageDraw, ImageOps
    if thumb < 16 or cols < 1 or max_faces < 1:
        raise ClustergError("contact_sheet: thumb >= 16, cols >= 1 and max_faces >= 1 are required")
    order = sorted(range(len(items)), key=lambda i: (-float(items[i][2]), i))
    if len(order) > max_faces:
        half = max_faces // 2
        order = order[:max_faces - half] + order[len(order) - half:]
    tiles = []
    for i in order:
        path, box, conf = items[i]
        try:
            with Image.open(path) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
                if box is not None:
                    left, top, right, bottom = (int(v) for v in box)
                    m = max(right - left, bottom - top) // 2
                    im = im.crop((max(0, left - m), max(0, top - m), min(im.width, right + m),
                                  min(im.height, bottom + m)))
                im.thumbnail((thumb, thumb))
                tiles.append((im.copy(), float(conf)))
        except Exception as e:  # a photo that cannot be shown leaves a grey tile
            logger.info("contact sheet: cannot show %s (%s)", path, e)
            tiles.append((Image.new("RGB", (thumb, thumb), (128, 128, 128)), float(conf)))
    if not tiles:
        return 0
    cols = min(cols, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    bar = 6
    sheet = Image.new("RGB", (cols * (thumb + 4), rows * (thumb + bar + 6)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for n, (im, conf) in enumerate(tiles):
        x0, y0 = (n % cols) * (thumb + 4) + 2, (n // cols) * (thumb + bar + 6) + 2
        sheet.paste(im, (x0 + (thumb - im.width) // 2, y0 + (thumb - im.height) // 2))
        w = int(round(max(0.0, min(1.0, conf)) * thumb))
        colour = (40, 160, 60) if conf >= 0.8 else (230, 160, 30) if conf >= 0.5 else (200, 40, 40)
        draw.rectangle([x0, y0 + thumb + 2, x0 + thumb - 1, y0 + thumb + 1 + bar], fill=(225, 225, 225))
        if w:
            draw.rectangle([x0, y0 + thumb + 2, x0 + w - 1, y0 + thumb + 1 + bar], fill=colour)
    out_png = Path(out_png)
    with atomic_path(out_png, suffix=".png") as tmp:
        sheet.save(tmp, format="PNG")
    return len(tiles)
