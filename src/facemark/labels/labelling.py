"""Teacher labelling of an image folder into a JSON Lines label file (resumable, parallel).

Teachers (`facemark.labels.teachers`): "mediapipe" and "ensemble" write face88 records, "dlib" writes ibug68 records
(68 points). The ensemble's `source` says per record which teachers contributed.

Every image gets exactly one record: points from the teacher, or `points: null` with the reason (unreadable
image, no face found). Records are appended and flushed as they come, so a killed run loses at most the
images in flight, and a rerun skips the images already in the output.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from facemark.labels.annotations import LabelRecord, ensure_line_end, labelled_images
from facemark.images import ImageError, iter_image_files, load_image
from facemark.workers import workers_ignore_ctrl_c
from facemark.cli.sharding import in_shard
from facemark.labels.teachers import create_teacher

_teacher = None  # one per worker process: the teacher's graph is not shareable between processes


def _init_worker(teacher_name: str, layout=None) -> None:
    global _teacher
    _teacher = create_teacher(teacher_name, layout)


def _label_one(job: tuple[str, str]) -> tuple[str, str]:
    """(JSON line, outcome) for one image; outcome is 'labelled', 'no_face' or 'unreadable'."""
    path, name = job
    try:
        rgb = load_image(path)
    except ImageError as e:
        record = LabelRecord(image=name, scheme=_teacher.scheme, source=_teacher.source, error=str(e))
        return record.to_json(), "unreadable"
    result = _teacher.label(rgb)
    # the ensemble names per record which teachers contributed; the others are one source for all
    record = LabelRecord(image=name, scheme=_teacher.scheme, points=result.points, box=result.box,
                         source=result.source or _teacher.source, error=result.error,
                         width=rgb.shape[1], height=rgb.shape[0])
    return record.to_json(), "labelled" if result.points is not None else "no_face"


@dataclass
class LabelSummary:
    labelled: int = 0
    no_face: int = 0
    unreadable: int = 0
    skipped_existing: int = 0


def label_folder(images_dir: str | Path, out: str | Path, *, teacher: str = "mediapipe",
                 workers: int = 1, progress: bool = True,
                 shard: tuple[int, int] | None = None, layout=None) -> LabelSummary:
    """Label the images under `images_dir` into `out` (appending; images already in it are skipped).

    `shard=(i, n)` labels only the images whose name (path relative to `images_dir`) falls in shard i of n
    (`facemark.cli.sharding.in_shard`), so n machines can split a folder without coordination. `layout`: a
    Scheme of your own that the teacher writes through its `from_mediapipe` (or, for dlib, `from_ibug68`) table."""
    global _teacher
    images_dir, out = Path(images_dir), Path(out)
    if not images_dir.is_dir():
        raise ImageError(f"not a folder: {images_dir}")
    if shard is not None and not 0 <= shard[0] < shard[1]:
        raise ValueError(f"bad shard {shard[0]}/{shard[1]}: expected 0 <= i < n")
    done = labelled_images(out)
    summary = LabelSummary()

    def names():
        for path in iter_image_files([images_dir]):
            name = path.relative_to(images_dir).as_posix()
            if shard is None or in_shard(name, *shard):
                yield path, name

    def jobs():
        for path, name in names():
            if name in done:
                summary.skipped_existing += 1
                continue
            yield str(path), name

    total = sum(1 for _, name in names() if name not in done)  # a cheap first pass: names only
    # the teacher before any output: one that cannot start (a missing extra) is one line, and no empty label
    # file is left behind for a later run to "resume"
    first_teacher = create_teacher(teacher, layout)
    out.parent.mkdir(parents=True, exist_ok=True)
    ensure_line_end(out)
    with out.open("a", encoding="utf-8") as fh, tqdm(total=max(total, 0), disable=not progress,
                                                     unit="img", desc="label") as bar:
        if workers <= 1:
            _teacher = first_teacher
            results = map(_label_one, jobs())
            pool = None
        else:
            first_teacher.close()  # it started, so the workers' teachers will: none fails forever in a worker
            with workers_ignore_ctrl_c():  # the parent alone answers Ctrl-C: no worker prints a traceback
                pool = multiprocessing.get_context("spawn").Pool(workers, _init_worker, (teacher, layout))
            results = pool.imap(_label_one, jobs(), chunksize=8)
        try:
            for line, outcome in results:
                fh.write(line + "\n")
                fh.flush()
                setattr(summary, outcome, getattr(summary, outcome) + 1)
                bar.update(1)
        finally:
            if pool is not None:
                pool.terminate()
            elif _teacher is not None:
                _teacher.close()
    return summary

