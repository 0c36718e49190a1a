"""Training cache: images + clean labels -> fixed-size context crops and crop-space targets on disk.

Decoding JPEGs every epoch would cost more than the network on 2 cores, so every face is cropped once.
The cache keeps a *context* crop (the network's square times `CONTEXT`) so that augmentation can shift,
zoom and rotate without running out of pixels; the network's own S×S view is its centre.

Folder layout:
    crops.npy    (N, C, C, 3) uint8, C ≈ S × CONTEXT with C − S even   (memory-mapped when read)
    points.npy   (N, P, 2) float32, context-crop pixel-centre coordinates
    val.npy      (N,) bool, True for validation identities
    meta.json    scheme, sizes, image names, counts

The split is by identity (CelebA names are `<identity>_<index>.jpg`; other names are their own identity) and
depends only on the identity's name, so it is stable across runs and machines.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facemark.labels.annotations import LabelRecord, as_layout, read_labels, read_pts_folder
from facemark.images import ImageError, load_image
from facemark.pipeline.crops import (DEFAULT_MARGIN, DEFAULT_SIZE, CropTransform, box_from_points, crop_image,
                                    square_crop_transform)
from facemark.layouts import Scheme, get_scheme

CONTEXT = 1.4  # context crop side / network crop side (rounded so the network view sits on whole pixels)


def context_size(size: int) -> int:
    """Context crop side for network crop side `size`: about size × CONTEXT, an even number of pixels more."""
    return size + 2 * round(size * (CONTEXT - 1) / 2)


def identity_of(image_name: str) -> str:
    """The person an image shows, for the split: CelebA's `<identity>_<index>.jpg` gives `<identity>`.

    UTKFace's `<age>_<gender>_<race>_<time>.jpg.chip.jpg` carries no identity, so each file is its own (its
    leading field is an age, not a person)."""
    name = Path(image_name).name
    if name.endswith(".chip.jpg"):
        return name[:-len(".chip.jpg")]
    stem = Path(name).stem
    return stem.split("_", 1)[0] if "_" in stem else stem


def is_validation_identity(identity: str, val_fraction: float) -> bool:
    return zlib.crc32(identity.encode()) % 10_000 < val_fraction * 10_000


def context_transform(box: tuple[float, float, float, float], size: int, margin: float) -> CropTransform:
    """Square around the face's points box (the network's framing), widened by CONTEXT."""
    net = square_crop_transform(box, size, margin)
    context = context_size(size)
    return CropTransform(net.cx, net.cy, net.side * context / size, context)


def build_cache(labels: str | Path, images_dir: str | Path, out: str | Path, *, size: int | None = None,
                margin: float | None = None, val_fraction: float = 0.1, progress: bool = True,
                layout: Scheme | None = None) -> dict:
    """`layout`: the cache's point layout; labels of another layout are converted to it through its
    `from_<layout>` table (facemark.labels.annotations.as_layout), and its `margin` frames the crops unless
    `margin` is given. None: the labels' own layout."""
    size = DEFAULT_SIZE if size is None else size
    if margin is None and layout is not None and layout.margin is not None:
        margin = layout.margin
    margin = DEFAULT_MARGIN if margin is None else margin
    if size < 16 or margin <= 0 or not 0 < val_fraction < 1:
        raise ValueError(f"need size >= 16, margin > 0 and 0 < val fraction < 1 (got {size}, {margin}, {val_fraction})")
    images_dir, out = Path(images_dir), Path(out)
    source = read_pts_folder(labels, layout) if Path(labels).is_dir() else read_labels(labels)
    if layout is not None:
        source = (as_layout(r, layout) for r in source)
    records = [r for r in source if framing_box(r) is not None]
    if not records:
        raise ValueError(f"{labels}: no usable labelled faces")
    schemes = {r.scheme for r in records}
    if len(schemes) != 1:
        raise ValueError(f"{labels}: mixes schemes {sorted(schemes)}; a cache holds one")
    scheme = layout if layout is not None else get_scheme(schemes.pop())
    context = context_size(size)
    out.mkdir(parents=True, exist_ok=True)
    crops = np.lib.format.open_memmap(out / "crops.npy.tmp", mode="w+", dtype=np.uint8,
                                      shape=(len(records), context, context, 3))
    points = np.zeros((len(records), scheme.num_points, 2), np.float32)
    names, skipped = [], []
    n = 0
    for record in tqdm(records, desc="cache", unit="img", disable=not progress):
        try:
            image = load_image(images_dir / record.image)
        except ImageError as e:
            skipped.append(str(e))
            continue
        transform = context_transform(framing_box(record), size, margin)
        crops[n] = crop_image(image, transform)
        points[n] = transform.to_crop(record.points)
        names.append(record.image)
        n += 1
    crops.flush()
    del crops
    _truncate_npy(out / "crops.npy.tmp", n, out / "crops.npy")
    np.save(out / "points.npy", points[:n])
    val = np.array([is_validation_identity(identity_of(name), val_fraction) for name in names], bool)
    np.save(out / "val.npy", val)
    meta = {"scheme": scheme.to_dict(), "size": size, "margin": margin, "context": CONTEXT,
            "count": n, "train_count": int((~val).sum()), "val_count": int(val.sum()),
            "val_identities": len({identity_of(m) for m, v in zip(names, val) if v}),
            "val_fraction": val_fraction, "labels": str(labels), "images": names, "skipped": skipped}
    (out / "meta.json").write_text(json.dumps(meta))
    return meta


def framing_box(record: LabelRecord) -> tuple[float, float, float, float] | None:
    """The box a face's crop is framed on, or None when the record cannot be used for training.

    A complete shape is framed on its own points' box. A partial one (some points null, e.g. the 34 face88
    points a human iBUG label gives) is framed on the record's `box`, which must be the full shape's points box.
    """
    if record.points is None:
        return None
    finite = np.isfinite(record.points).all(axis=1)
    if finite.all():
        return box_from_points(record.points)
    if finite.any() and record.box is not None:
        return record.box
    return None


def _truncate_npy(tmp: Path, n: int, final: Path) -> None:
    """Keep the first n rows of a memmapped .npy (some images may have been unreadable)."""
    full = np.load(tmp, mmap_mode="r")
    if n == len(full):
        del full
        tmp.replace(final)
        return
    kept = np.lib.format.open_memmap(final, mode="w+", dtype=full.dtype, shape=(n,) + full.shape[1:])
    kept[:] = full[:n]
    kept.flush()
    del kept, full
    tmp.unlink()


@dataclass
class FaceCache:
    """A cache folder opened for training or evaluation (crops memory-mapped)."""
    crops: np.ndarray
    points: np.ndarray
    val: np.ndarray
    scheme: Scheme
    size: int
    margin: float
    names: list[str]

    @property
    def context_size(self) -> int:
        return self.crops.shape[1]

    def indices(self, split: str) -> np.ndarray:
        if split == "train":
            return np.flatnonzero(~self.val)
        if split == "val":
            return np.flatnonzero(self.val)
        if split == "all":
            return np.arange(len(self.val))
        raise ValueError(f"unknown split {split!r}: use train, val or all")

    def network_view(self, index) -> tuple[np.ndarray, np.ndarray]:
        """The undistorted S×S network crop(s) and points in its coordinates: the centre of the context crop."""
        c, s = self.context_size, self.size
        offset = (c - s) / 2
        lo = int(np.floor(offset))
        if abs(offset - lo) > 1e-6:
            raise ValueError("context and network sizes must differ by an even number of pixels")
        crops = self.crops[index, lo:lo + s, lo:lo + s]
        return np.ascontiguousarray(crops), self.points[index] - offset


def open_cache(path: str | Path) -> FaceCache:
    path = Path(path)
    meta_path = path / "meta.json"
    if not meta_path.exists():
        raise ValueError(f"{path} is not a facemark cache (no meta.json); make one with `facemark cache`")
    meta = json.loads(meta_path.read_text())
    return FaceCache(crops=np.load(path / "crops.npy", mmap_mode="r"), points=np.load(path / "points.npy"),
                     val=np.load(path / "val.npy"), scheme=Scheme.from_dict(meta["scheme"]),
                     size=meta["size"], margin=meta["margin"], names=meta["images"])
