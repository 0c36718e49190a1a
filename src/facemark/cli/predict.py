"""`facemark predict`: landmarks for files, folders and globs, one JSON line per input image.

Every input appears in the output exactly once, with its faces or with the reason it failed; a bad file
never stops the batch. Lines are written (and flushed) as images finish.

Inputs are streamed (a million-file folder is never held as a list). `shard=(i, n)` keeps only the inputs in
shard i of n (`facemark.cli.sharding`), and `resume=True` appends to an existing JSON file, skipping the inputs
it already holds, so a killed run picks up where it stopped. `workers=N` runs N spawned processes, each with
its own single-threaded Landmarker, that decode, detect and predict; the parent writes their records in input
order.

Drawings (`draw_dir`) mirror the inputs' paths below the folder they all lie in: `albums/a/IMG_0001.jpg` and
`albums/b/IMG_0001.jpg` become `DRAW/a/IMG_0001_landmarks.png` and `DRAW/b/IMG_0001_landmarks.png`. Two inputs
that would still share a name (`x.jpg` and `x.png` in one folder) never overwrite each other: the later one in
input order is `x.png_landmarks.png`. The names are decided in the parent, in input order, for every input
(also those another shard or an earlier run handles), so they are the same with or without workers, shards or
--resume. A drawing that cannot be written is one failure; the image's points are still in the JSON. The
outputs (the JSON file, the drawings' folder) are checked writable before any input is read, so a read-only
folder is one error up front, not one per image after the work.

An animated GIF, WebP or PNG (or a multi-page TIFF) is predicted on its first frame (page), with a notice
naming `facemark video`, which reads every frame. A JPEG file cut short is an unreadable image, unless the
options allow truncated files (`allow_truncated`, `--allow-truncated`): it is then predicted on the part its data
holds, its record gets `"truncated": true`, and a notice says so.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from facemark.images import ImageError, ImageReader, image_size, iter_image_files, sniff
from facemark.cli.outputs import check_writable_file, check_writable_folder
from facemark.cli.sharding import in_shard
from facemark.options import LandmarkerOptions
from facemark.workers import workers_ignore_ctrl_c


@dataclass
class PredictSummary:
    images: int = 0  # processed in this run
    faces: int = 0
    failed: list[str] = field(default_factory=list)
    skipped_existing: int = 0  # already in the JSON file (resume)
    other_shards: int = 0  # inputs left to the other shards
    # not failures: an animated image read on its first frame, a JPEG file cut short read as far as it goes
    notices: list[str] = field(default_factory=list)


# Suffixes of video files, for a helpful error when one is given to `predict` (a folder walk never lists them)
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".flv", ".mpg", ".mpeg",
                              ".3gp", ".ts", ".mts", ".m2ts", ".ogv"})


def predict_record(landmarker, path: Path) -> tuple[dict, list, str | None]:
    """(JSON record, faces, notice or None) for one image; errors go into the record, the notice says when
    only the first of several pictures was read, or only the part of a file cut short that it holds."""
    record, faces, notice, _ = _predicted(landmarker, path)
    return record, faces, notice


def _predicted(landmarker, path: Path) -> tuple[dict, list, str | None, ImageReader | None]:
    """predict_record, and the image's reader (None when unreadable): the file is opened once, its header read
    once, its pixels decoded once (a huge image: never whole), and a drawing reuses that decode."""
    record = {"image": str(path), "width": None, "height": None, "faces": [], "error": None}
    try:
        reader = ImageReader(path, allow_truncated=landmarker.options.allow_truncated)
        record["width"], record["height"] = reader.size
        faces = landmarker.detect(reader)
    except ImageError as e:
        record.update(width=None, height=None, error=_video_instead(path) or str(e))
        return record, [], None, None
    record["faces"] = [f.to_dict() for f in faces]
    pictures = reader.pictures
    notice = None if pictures == 1 else _first_frame_only(path, reader.format, pictures)
    if reader.truncated:  # only then: the records of whole files keep their fields
        record["truncated"] = True
        notice = truncated_notice(path)
    return record, faces, notice, reader


def truncated_notice(path) -> str:
    """The notice for a JPEG file cut short that was read as far as its data goes."""
    return (f"{path}: a truncated JPEG (the file ends before the image does), read as far as its data goes; the "
            "rest of the picture is grey")


# Pillow's formats that hold animations (`facemark video` reads them), and how they are called
_ANIMATED = {"GIF": "GIF", "WEBP": "WebP", "PNG": "PNG (APNG)"}


def _first_frame_only(path: Path, fmt: str, pictures: int) -> str:
    """The notice for an image of several pictures, of which the Landmarker read the first."""
    if fmt in _ANIMATED:
        count = f" of {pictures} frames" if pictures > 1 else ""  # 0: a damaged GIF, its frames not counted
        return (f"{path}: an animated {_ANIMATED[fmt]}{count}; the points are from its first frame only; for "
                f"every frame use `facemark video {shlex.quote(str(path))}`")
    count = f" of {pictures} pages" if pictures > 1 else ""
    return f"{path}: a {fmt} image{count}; the points are from its first page only"


def _video_instead(path: Path) -> str | None:
    """The error for a video file given as an image (it says so and names the command for videos), else None."""
    found = sniff(str(path))
    if found.kind == "unreadable":  # the image error says why
        return None
    kind = {"mp4": "an MP4/MOV video", "matroska": "a Matroska/WebM video", "avi": "an AVI video"}.get(found.kind)
    if kind is None and found.kind != "heif":
        kind = "a video" if path.suffix.lower() in VIDEO_EXTENSIONS else None
    if kind is None:
        return None
    return (f"cannot read image {str(path)!r}: {kind}, not an image; "
            f"for a video use `facemark video {shlex.quote(str(path))}`")


class DrawingNames:
    """Where each input's drawing goes (see the module docstring); call it once per input, in input order."""

    def __init__(self, draw_dir: str | Path, inputs: list):
        self.draw_dir = Path(draw_dir)
        try:
            self.base = os.path.commonpath([_input_root(item) for item in inputs]) if inputs else None
        except ValueError:  # paths on different drives (Windows): no common folder, names stay flat
            self.base = None
        self.taken: set[int] = set()  # hashes of the names given out (a million inputs: a few tens of MB)

    def __call__(self, path: Path) -> Path:
        folder = self.draw_dir
        if self.base is not None:
            relative = os.path.relpath(os.path.dirname(os.path.abspath(path)), self.base)
            if relative != os.curdir and not relative.startswith(os.pardir):
                folder = folder / relative
        candidates = itertools.chain([f"{path.stem}_landmarks.png", f"{path.name}_landmarks.png"],
                                     (f"{path.stem}_{k}_landmarks.png" for k in itertools.count(2)))
        for name in candidates:
            # case-folded: on macOS and Windows IMG.png and img.png are one file
            key = hash(os.path.normcase(os.path.join(folder, name)).casefold())
            if key not in self.taken:
                self.taken.add(key)
                return folder / name
        raise AssertionError("unreachable")


def _input_root(item) -> str:
    """The folder an input's images lie under: a folder itself, a file's folder, a glob's fixed leading part."""
    text = os.fspath(item)
    if os.path.isdir(text):
        return os.path.abspath(text)
    if os.path.exists(text) or not re.search(r"[*?[]", text):
        return os.path.dirname(os.path.abspath(text))
    fixed = []
    for part in Path(text).parts:
        if re.search(r"[*?[]", part):
            break
        fixed.append(part)
    return os.path.abspath(os.path.join(*fixed)) if fixed else os.path.abspath(os.curdir)


class _LazyLandmarker:
    """A Landmarker built from its options on first use, so a batch of unreadable files never loads a model."""

    def __init__(self, options: LandmarkerOptions):
        self.options, self._landmarker = options, None  # the options are read before the model is needed

    def __getattr__(self, name):
        if self._landmarker is None:
            from facemark.landmarker import Landmarker

            self._landmarker = Landmarker.from_options(self.options)
        return getattr(self._landmarker, name)


_worker = None  # the Landmarker of a predict worker process


def _init_worker(options: LandmarkerOptions) -> None:
    global _worker
    from facemark.landmarker import Landmarker

    _worker = Landmarker.from_options(options.replace(threads=1))  # one process per core beats threads in one


def _predict_in_worker(item: tuple[str, str | None]) -> tuple[dict, int, str | None, str | None]:
    path, drawing = item
    return _predict_and_draw(_worker, Path(path), None if drawing is None else Path(drawing))


def _predict_and_draw(landmarker, path: Path, drawing: Path | None) -> tuple[dict, int, str | None, str | None]:
    """(JSON record, number of faces, why the drawing failed or None, notice or None); the drawing, if asked
    for, is written here (where the image is). A drawing that fails never takes the record's points with it."""
    record, faces, notice, reader = _predicted(landmarker, path)
    if drawing is None or record["error"]:
        return record, len(faces), None, notice
    try:
        _draw(reader.array(), faces, landmarker.scheme, drawing)
    except (ImageError, OSError, ValueError) as e:
        why = f"cannot write the drawing of {path} to {drawing}: {' '.join(str(e).split())}"
        return record, len(faces), why, notice
    return record, len(faces), None, notice


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

    landmarker: a Landmarker, or the LandmarkerOptions to build one from once the inputs check out (so a bad input is refused at once, and a batch with
    nothing readable in it never loads a model); needed with workers > 1, where each worker process builds
    its own (with one thread).

    shard: (i, n) -> only the inputs whose path string falls in shard i of n.
    resume: append to `json_path` (required) and skip the inputs already recorded in it; otherwise an
    existing `json_path` is overwritten. json_path "-": standard output.

    Raises OutputError (an OSError) before any input is read when `json_path` or `draw_dir` cannot be
    written (a read-only folder, a file where a folder should be).
    """
    inputs = list(inputs)
    if resume and json_path is None:
        raise ValueError("resuming needs a JSON file to resume")
    if shard is not None and not 0 <= shard[0] < shard[1]:
        raise ValueError(f"bad shard {shard[0]}/{shard[1]}: expected 0 <= i < n")
    if json_path is not None and str(json_path) != "-":
        check_writable_file(json_path, in_place=True)
    if draw_dir is not None:
        check_writable_folder(draw_dir)
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
    peek = list(itertools.islice(files, 1))
    files = itertools.chain(peek, files)
    head = [Path(item) for item in missing] + head  # load_image records "no such file" for them
    options = landmarker if isinstance(landmarker, LandmarkerOptions) else None
    if options is None and workers > 1:
        raise ValueError("with workers > 1, pass the LandmarkerOptions, not a Landmarker")
    if options is not None:
        landmarker = _LazyLandmarker(options)
        if not peek and not any(_readable(path) for path in head):
            workers = 1  # one or two inputs, none of them readable: their records need no model
        else:
            landmarker.scheme  # noqa: B018 -- builds it: a bad --model fails here, before any output is written
    done = predicted_images(json_path) if resume else set()
    summary = PredictSummary()
    out = None
    if json_path is not None and str(json_path) == "-":
        if resume:
            raise ValueError("standard output cannot be resumed")
        # sys.stdout itself: reopening /dev/stdout would truncate a file that `>>` appends to
        out = sys.stdout
    elif json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        if resume:
            repair_tail(json_path)
        elif earlier := len(predicted_images(json_path)):
            summary.notices.append(f"{json_path} held {earlier} records of an earlier run, replaced by this one's "
                                   "(after an interrupted run, --resume continues it instead)")
        out = open(json_path, "a" if resume else "w", encoding="utf-8")
    if draw_dir is not None:
        Path(draw_dir).mkdir(parents=True, exist_ok=True)
    drawing_names = DrawingNames(draw_dir, present) if draw_dir is not None else None

    def todo():
        for path in itertools.chain(head, files):
            # every input takes its drawing's name, also those left to other shards or done before: the
            # names then do not depend on the shard, the workers or --resume
            drawing = drawing_names(path) if drawing_names is not None else None
            name = str(path)
            if shard is not None and not in_shard(name, *shard):
                summary.other_shards += 1
            elif name in done:
                summary.skipped_existing += 1
            else:
                yield path, drawing

    pool = None
    if workers > 1:
        landmarker = None  # built above only to check the options; each worker builds its own
        with workers_ignore_ctrl_c():
            pool = multiprocessing.get_context("spawn").Pool(workers, _init_worker, (options,))
        # a small chunk keeps memory flat and the order cheap to restore; imap yields in input order
        results = pool.imap(_predict_in_worker,
                            ((str(p), None if d is None else str(d)) for p, d in todo()), chunksize=2)
    else:
        results = (_predict_and_draw(landmarker, path, drawing) for path, drawing in todo())
    show_bar = progress and len(head) >= 2
    # the bar's total: a second, names-only pass over the inputs (nothing is held, as in the first)
    total = sum(1 for path in itertools.chain(map(Path, missing), iter_image_files(present))
                if (shard is None or in_shard(str(path), *shard)) and str(path) not in done) if show_bar else None
    try:
        with tqdm(desc="predict", unit="img", total=total, disable=not show_bar) as bar:
            for record, n_faces, draw_error, notice in results:
                summary.images += 1
                summary.faces += n_faces
                if record["error"]:
                    summary.failed.append(record["error"])
                if draw_error:
                    summary.failed.append(draw_error)
                if notice:
                    summary.notices.append(notice)
                if out is not None:
                    out.write(json.dumps(record) + "\n")
                    out.flush()
                bar.update(1)
    except KeyboardInterrupt:
        if out is None or out is sys.stdout:
            raise
        # what was written stays: whole records (each flushed as it came), which --resume continues from; counted in
        # the file itself, as Ctrl-C may come between a record's count and its write
        out.flush()
        raise KeyboardInterrupt(f"{json_path} holds the records of the {len(predicted_images(json_path))} images "
                                "done; the same command with --resume continues") from None
    finally:
        if pool is not None:
            pool.terminate()
        if out is sys.stdout:
            out.flush()
        elif out is not None:
            out.close()
    return summary


def _readable(path: Path) -> bool:
    """Whether the image's header can be read (cheap: decodes no pixels)."""
    try:
        image_size(path)
    except ImageError:
        return False
    return True


def _draw(rgb, faces, scheme, path: Path) -> None:
    from PIL import Image, ImageDraw

    from facemark.drawing import draw_points

    image = Image.fromarray(rgb)
    for face in faces:
        size = max(face.box[2] - face.box[0], 1)
        image = draw_points(image, face.points, scheme, radius=max(1.0, size / 90))
        ImageDraw.Draw(image).rectangle(face.box, outline=(255, 255, 255), width=max(1, int(size / 150)))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
