"""`facemark predict`: landmarks for files, folders and globs, one JSON line per input image.

Every input appears in the output exactly once, with its faces or with the reason it failed; a bad file
never stops the batch. Lines are written (and flushed) as images finish.

Inputs are streamed (a million-file folder is never held as a list). `shard=(i, n)` keeps only the inputs in
shard i of n (`facemark.sharding`), and `resume=True` appends to an existing JSON file, skipping the inputs
it already holds, so a killed run picks up where it stopped. `workers=N` runs N spawned processes, each with
its own single-threaded Landmarker, that decode, detect and predict; the parent writes their records in input
order.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from facemark.images import ImageError, image_size, iter_image_files, load_image
from facemark.sharding import in_shard


@dataclass
class PredictSummary:
    images: int = 0  # processed in this run
    faces: int = 0
    failed: list[str] = field(default_factory=list)
    skipped_existing: int = 0  # already in the JSON file (resume)
    other_shards: int = 0  # inputs left to the other shards


def predict_record(landmarker, path: Path, *, need_pixels: bool = False) -> tuple[dict, object, list]:
    """(JSON record, RGB image or None, faces) for one image; errors go into the record.

    The Landmarker reads the file itself (a huge image is never decoded whole); the pixels are loaded here
    only when `need_pixels` (for drawing)."""
    record = {"image": str(path), "width": None, "height": None, "faces": [], "error": None}
    try:
        record["width"], record["height"] = image_size(path)
        faces = landmarker.detect(path)
        rgb = load_image(path) if need_pixels else None
    except ImageError as e:
        record.update(width=None, height=None, error=str(e))
        return record, None, []
    record["faces"] = [f.to_dict() for f in faces]
    return record, rgb, faces


_worker: tuple | None = None  # (Landmarker, draw folder) of a predict worker process


def _init_worker(options: dict, draw_dir: str | None) -> None:
    global _worker
    import torch

    from facemark.api import Landmarker

    torch.set_num_threads(1)  # one process per core scales better than threads inside one process
    _worker = (Landmarker(**options, threads=1), draw_dir)


def _predict_in_worker(path: str) -> tuple[dict, int]:
    landmarker, draw_dir = _worker
    return _predict_and_draw(landmarker, Path(path), draw_dir)


def _predict_and_draw(landmarker, path: Path, draw_dir) -> tuple[dict, int]:
    """(JSON record, number of faces); the drawing, if asked for, is written here (where the image is)."""
    record, rgb, faces = predict_record(landmarker, path, need_pixels=draw_dir is not None)
    if not record["error"] and draw_dir is not None:
        _draw(rgb, faces, landmarker.scheme, Path(draw_dir) / f"{path.stem}_landmarks.png")
    return record, len(faces)


def predicted_images(json_path: str | Path) -> set[str]:
    """The "image" of every record in a predict JSON Lines file; lines that are not valid JSON records (a
    half-written last line from a killed run) are ignored. Empty set when the file does not exist."""
    done: set[str] = set()
    path = Path(json_path)
    if not path.is_file():
        return done
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("image"), str):
                done.add(record["image"])
    return done


def repair_tail(json_path: str | Path) -> None:
    """Make an existing JSON Lines file end with a complete line before appending to it.

    A run killed mid-write can leave a last line without its newline: if that line is a whole JSON record it
    keeps it and gets its newline, otherwise (half a record) it is cut off, so the file holds only whole
    records and the image it was for is predicted again."""
    path = Path(json_path)
    if not path.is_file():
        return
    with path.open("rb+") as fh:
        size = fh.seek(0, 2)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        start = size  # find where the last line starts, reading backwards in blocks
        while start > 0:
            block = min(1 << 16, start)
            fh.seek(start - block)
            chunk = fh.read(block)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                start = start - block + cut + 1
                break
            start -= block
        fh.seek(start)
        tail = fh.read()
        try:
            whole = isinstance(json.loads(tail), dict)
        except ValueError:
            whole = False
        if whole:
            fh.seek(size)
            fh.write(b"\n")
        else:
            fh.truncate(start)


def predict_inputs(landmarker, inputs: list[str], *, json_path: str | Path | None = None,
                   draw_dir: str | Path | None = None, progress: bool = True,
                   shard: tuple[int, int] | None = None, resume: bool = False,
                   workers: int = 1) -> PredictSummary:
    """Predict every image named by `inputs` (files, folders, globs; see `iter_image_files`), streaming.

    landmarker: a Landmarker, or with workers > 1 the dict of Landmarker keyword arguments each worker
    process builds its own from (model, detector, backend).

    shard: (i, n) -> only the inputs whose path string falls in shard i of n.
    resume: append to `json_path` (required) and skip the inputs already recorded in it; otherwise an
    existing `json_path` is overwritten.
    """
    inputs = list(inputs)
    if resume and json_path is None:
        raise ValueError("resuming needs a JSON file to resume")
    if shard is not None and not 0 <= shard[0] < shard[1]:
        raise ValueError(f"bad shard {shard[0]}/{shard[1]}: expected 0 <= i < n")
    # A missing path among others is one failed input (recorded, the batch goes on); when nothing named
    # exists at all, the command fails up front with one line instead of writing an output of errors.
    missing = [item for item in inputs
               if not os.path.exists(os.fspath(item)) and not re.search(r"[*?[]", os.fspath(item))]
    present = [item for item in inputs if item not in missing]
    if not present:
        raise ImageError(f"no such file or folder: {os.fspath(missing[0])!r}")
    files = iter_image_files(present)
    head = list(itertools.islice(files, 2))  # enough to tell "none" and "just one" without listing
    if not head:
        raise ImageError(f"no images found in {', '.join(map(str, present))}")
    head = [Path(item) for item in missing] + head  # load_image records "no such file" for them
    done = predicted_images(json_path) if resume else set()
    summary = PredictSummary()
    out = None
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        if resume:
            repair_tail(json_path)
        out = open(json_path, "a" if resume else "w", encoding="utf-8")
    if draw_dir is not None:
        Path(draw_dir).mkdir(parents=True, exist_ok=True)
    def todo():
        for path in itertools.chain(head, files):
            name = str(path)
            if shard is not None and not in_shard(name, *shard):
                summary.other_shards += 1
            elif name in done:
                summary.skipped_existing += 1
            else:
                yield path

    pool = None
    if workers > 1:
        options = landmarker if isinstance(landmarker, dict) else None
        if options is None:
            raise ValueError("with workers > 1, pass the Landmarker options (a dict), not a Landmarker")
        pool = multiprocessing.get_context("spawn").Pool(
            workers, _init_worker, (options, None if draw_dir is None else str(draw_dir)))
        # a small chunk keeps memory flat and the order cheap to restore; imap yields in input order
        results = pool.imap(_predict_in_worker, (str(p) for p in todo()), chunksize=2)
    else:
        if isinstance(landmarker, dict):
            from facemark.api import Landmarker
            landmarker = Landmarker(**landmarker)
        results = (_predict_and_draw(landmarker, path, draw_dir) for path in todo())
    try:
        # a running count: the total is not known without listing everything first
        with tqdm(desc="predict", unit="img", disable=not progress or len(head) < 2) as bar:
            for record, n_faces in results:
                summary.images += 1
                summary.faces += n_faces
                if record["error"]:
                    summary.failed.append(record["error"])
                if out is not None:
                    out.write(json.dumps(record) + "\n")
                    out.flush()
                bar.update(1)
    finally:
        if pool is not None:
            pool.terminate()
        if out is not None:
            out.close()
    return summary


def _draw(rgb, faces, scheme, path: Path) -> None:
    from PIL import Image, ImageDraw

    from facemark.drawing import draw_points

    image = Image.fromarray(rgb)
    for face in faces:
        size = max(face.box[2] - face.box[0], 1)
        image = draw_points(image, face.points, scheme, radius=max(1.0, size / 90))
        ImageDraw.Draw(image).rectangle(face.box, outline=(255, 255, 255), width=max(1, int(size / 150)))
    image.save(path)
