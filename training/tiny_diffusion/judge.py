"""Read a drawn scene back from its pixels: background, shape colour, shape kind, place.

Each pixel takes the nearest of the eight palette colours. The background is the colour
most of the border has; the shape is the largest group of pixels of one other colour. The
shape kind comes from how much of its bounding box it fills (a disc about 0.79, a square
1.0, a triangle, a diamond or a star about half) and, among the half-filled, from where it
is widest (a triangle at its base, a diamond in its middle) and whether rows cross it
twice (a star's legs).
"""

from __future__ import annotations

from dataclasses import dataclass

from training.tiny_diffusion.scenes import COLORS


@dataclass(frozen=True)
class Reading:
    background: str
    color: str | None
    shape: str | None
    fill: float
    center: tuple[float, float]  # fractions of width and height
    width: float  # the shape's bounding-box width / the image's

    def column_row(self) -> tuple[int, int]:
        return min(2, int(self.center[0] * 3)), min(2, int(self.center[1] * 3))


def nearest_colors(image) -> np.ndarray:  # noqa: F821
    """(H, W) indices into ``COLORS`` of each pixel's nearest palette colour."""
    import numpy as np

    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    palette = np.array(list(COLORS.values()), dtype=np.float32)
    d = ((rgb[:, :, None, :] - palette[None, None, :, :]) ** 2).sum(-1)
    return d.argmin(-1)


def read(image) -> Reading:
    """What ``image`` (a PIL image) shows."""
    import numpy as np

    names = list(COLORS)
    idx = nearest_colors(image)
    h, w = idx.shape
    border = np.concatenate([idx[0], idx[-1], idx[:, 0], idx[:, -1]])
    bg = int(np.bincount(border, minlength=len(names)).argmax())
    counts = np.bincount(idx[idx != bg].ravel(), minlength=len(names))
    if counts.sum() < 0.005 * h * w:
        return Reading(names[bg], None, None, 0.0, (0.5, 0.5), 0.0)
    fg = int(counts.argmax())
    mask = idx == fg
    ys, xs = np.nonzero(mask)
    # trim stray pixels: the box holding the central 99% of the shape's pixels
    x0, x1 = np.percentile(xs, [0.5, 99.5]).round().astype(int)
    y0, y1 = np.percentile(ys, [0.5, 99.5]).round().astype(int)
    box = mask[y0 : y1 + 1, x0 : x1 + 1]
    fill = float(box.mean()) if box.size else 0.0
    rows = box.sum(1)
    third = max(1, len(rows) // 3)
    top, middle, bottom = rows[:third].mean(), rows[third:-third].mean(), rows[-third:].mean()
    if fill > 0.9:
        shape = "square"
    elif fill > 0.66:
        shape = "circle"
    else:  # half-filled: a triangle is widest at its base, a diamond in its middle
        widest = float(np.argmax(rows)) / max(1, len(rows) - 1)
        # a star's legs: rows that cross the shape twice
        runs = (np.diff(box.astype(np.int8), axis=1) == 1).sum(1) + box[:, 0]
        if (runs >= 2).mean() > 0.12:
            shape = "star"
        elif widest > 0.75 and bottom > 1.4 * top:
            shape = "triangle"
        elif 0.3 < widest < 0.7 and middle > 1.3 * max(top, bottom) and fill > 0.4:
            shape = "diamond"
        else:
            shape = "star"
    center = ((x0 + x1) / 2 / w, (y0 + y1) / 2 / h)
    return Reading(names[bg], names[fg], shape, fill, center, (x1 - x0 + 1) / w)


def matches(reading: Reading, color: str, background: str, shape: str) -> bool:
    return (reading.color, reading.background, reading.shape) == (color, background, shape)
