"""Predict and label on a Ray cluster (the `ray` extra): `facemark predict|label ... --ray [ADDRESS]` and
`predict_dataset` for Ray Data pipelines.

Ray Data runs a pool of actors, each holding one Landmarker (or one teacher) loaded once, and feeds them
batches of inputs. An actor is a process of its own: one CPU each by default, one thread per CPU it holds.
Ray restarts an actor whose process dies (killed, out of memory, a lost node) and runs its batch again, and the
records come back exactly once each, in input order for the command line. A bad image is an error record,
like in the plain run, never a failed job.

The command line sends names, never pixels: each actor reads its images itself, so the files must be visible to
every machine of the cluster (a shared file system, or storage that pyarrow's file systems open: `s3://`,
`gs://`, `hdfs://`, `abfs://`; `http(s)://` URLs in a list file). The records stream back to the command, which
writes them as the plain run does.

Importing this module imports Ray; nothing else in facemark does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm import tqdm

from facemark.extras import install_hint

RAY_HINT = install_hint("ray")

try:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq
    import ray
    import ray.data
    from ray.util.client import ray as ray_client
except ImportError:
    raise ImportError(f"Ray Data is not installed (--ray and facemark.ray need it): {RAY_HINT}") from None

from facemark.images import IMAGE_EXTENSIONS, ImageError, iter_image_files
from facemark.labels.labelling import LabelSummary
from facemark.cli.outputs import check_writable_file
from facemark.cli.predict import PredictSummary, predict_record, predicted_images, repair_tail
from facemark.cli.sharding import in_shard
from facemark.options import LandmarkerOptions

# Images per call of an actor: enough to make Ray's per-task cost small beside ~15 ms per image, few enough that
# a restarted actor repeats little work and the last batches spread over every actor.
DEFAULT_BATCH_SIZE = 16
# How often Ray runs one batch again after its actor died; a batch that kills its actor every time (a file that
# crashes a decoder) then stops the job with an error instead of restarting actors forever.
DEFAULT_MAX_RETRIES = 3
# The object store of a local cluster started by `--ray`: the command moves names and records, never pixels,
# so a small store is plenty (Ray spills to disk beyond it).
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024
URL_TIMEOUT_S = 60
REACH_TIMEOUT_S = 10  # how long `--ray HOST:PORT` waits for the cluster to answer at all
# A Ray Client connection whose own server process the cluster failed to start (the process exits before writing a
# line; seen now and then on a 2-core head, the proxy's log saying only "SpecificServer startup failed") is asked for
# again, CLIENT_SERVER_TRIES times in all, CLIENT_SERVER_PAUSE_S apart: the cluster starts a new process for each
# connection. Any other refusal is final at once.
CLIENT_SERVER_FAILED = "Starting Ray client server failed"
CLIENT_SERVER_TRIES = 3
CLIENT_SERVER_PAUSE_S = 2.0
LIST_SUFFIXES = (".txt",)  # an input with this suffix is a list of images, one path or URL a line
_PARQUET_ROWS = 4096  # records per Parquet row group

# One predict record (facemark.cli.predict.predict_record), as Arrow types: what predict_dataset returns and what
# --parquet writes. Points are image pixels, [x, y] per point; box is x0, y0, x1, y1.
# outside: the indices of the points that lie outside the image (guesses); null when none do. truncated: true for a
# JPEG cut short and read as far as its data goes (allow_truncated); null for a whole file.
FACE_TYPE = pa.struct([("box", pa.list_(pa.float64())), ("score", pa.float64()),
                       ("points", pa.list_(pa.list_(pa.float64()))), ("trust", pa.float64()),
                       ("outside", pa.list_(pa.int64()))])
RECORD_SCHEMA = pa.schema([("image", pa.string()), ("width", pa.int64()), ("height", pa.int64()),
                           ("faces", pa.list_(FACE_TYPE)), ("error", pa.string()), ("truncated", pa.bool_())])
_LABEL_SCHEMA = pa.schema([("line", pa.string()), ("outcome", pa.string())])
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


# ---------------------------------------------------------------------------------------------- Python API


def predict_dataset(dataset: ray.data.Dataset, *, batch_size: int = DEFAULT_BATCH_SIZE,
                    workers: int | tuple[int, int] | None = None, num_cpus: float = 1, num_gpus: float = 0,
                    max_retries: int = DEFAULT_MAX_RETRIES, options: LandmarkerOptions | None = None,
                    **landmarker_options) -> ray.data.Dataset:
    """Landmarks for every row of a Ray Dataset of images: a Dataset with one record per row (lazy, like any
    Ray Dataset; iterate, `take_all()` or `write_parquet()` it).

    dataset: rows with any of
      - "image": an H×W×3 uint8 RGB array (or gray, RGBA, uint16, float: see facemark.images.load_image), as
        `ray.data.read_images(..., include_paths=True)` gives; its "path" column names the record;
      - "bytes": a whole image file, as `ray.data.read_binary_files(..., include_paths=True)` gives; a bad file
        becomes an error record (read_images fails the whole job on one undecodable file, this does not);
      - "path" alone: a local path (visible on every machine) or a URI (`s3://`, `gs://`, `file://`, `http(s)://`)
        that each worker reads itself, as the command line does.
    Returns rows of RECORD_SCHEMA: "image" (the path, None without one), "width" and "height" (pixels, None when
    unreadable), "faces" (a list of {"box": [x0, y0, x1, y1], "score", "points": P×[x, y], "trust", "outside":
    indices of points outside the image or None}, image pixels, origin at the centre of the top-left pixel,
    rounded to 0.01 px), "error" (None, or the one-line reason) and "truncated" (True for a JPEG cut short and
    read as far as its data goes, with allow_truncated; None otherwise). The other columns are not passed on.

    options, landmarker_options: a facemark.LandmarkerOptions, or its keyword arguments (model, detector, flip,
    min_face, min_trust, ...); `threads` defaults to the CPUs each worker holds. A Landmarker is built here
    first, so bad options raise their ValueError at once rather than on the cluster.
    batch_size: rows per call of a worker. workers: the number of actors (each with its own Landmarker), or
    (min, max) for a pool that grows with the work; default (1, as many as the cluster's CPUs, or GPUs with
    num_gpus, hold). A fixed pool that holds every CPU leaves none for the dataset's own read tasks, and Ray
    Data then waits forever: give it fewer, or (min, max). num_cpus, num_gpus: what Ray reserves for each
    actor (the landmark network runs on onnxruntime's CPU provider; num_gpus only reserves). max_retries: how
    often a batch is run again after its actor died.
    Raises ValueError for a dataset without any of these columns, a bad batch size or bad Landmarker options.
    """
    if not isinstance(dataset, ray.data.Dataset):
        raise ValueError(f"predict_dataset takes a ray.data.Dataset, got {type(dataset).__name__}")
    schema = dataset.schema(fetch_if_missing=False)
    if schema is not None and not {"image", "bytes", "path"} & set(schema.names):
        raise ValueError(f"the dataset needs an 'image', 'bytes' or 'path' column; it has {', '.join(schema.names)}")
    options = _worker_options(options.replace(**landmarker_options) if options else
                              LandmarkerOptions(**landmarker_options), num_cpus)
    _check_landmarker(options)
    return _predicted(dataset, options, batch_size=_batch_size(batch_size),
                      pool=_pool(workers, num_cpus, num_gpus), num_cpus=num_cpus, num_gpus=num_gpus,
                      max_retries=max_retries)


def _predicted(dataset: ray.data.Dataset, options: LandmarkerOptions, *, batch_size: int, pool: dict, num_cpus: float = 1,
               num_gpus: float = 0, max_retries: int = DEFAULT_MAX_RETRIES,
               for_command: bool = False) -> ray.data.Dataset:
    """predict_dataset without its checks: the records of `dataset` from a pool of _Predictor actors."""
    return dataset.map_batches(_Predictor, fn_constructor_args=(options, for_command), batch_size=batch_size,
                               batch_format="numpy", compute=ray.data.ActorPoolStrategy(**pool),
                               num_cpus=num_cpus, num_gpus=num_gpus or None, max_restarts=-1,
                               max_task_retries=max_retries)


class _Predictor:
    """A Ray Data actor: one Landmarker, records for batches of rows (see predict_dataset).

    for_command: also give each row's record as its JSON line ("json", exactly the plain run's, whatever fields
    a record has) and the plain run's notice for it ("notice": an animated image read on its first frame)."""

    def __init__(self, options: LandmarkerOptions, for_command: bool = False):
        from facemark.landmarker import Landmarker

        self.landmarker = Landmarker.from_options(options)
        self.for_command = for_command
        self.scratch = tempfile.TemporaryDirectory(prefix="facemark-ray-")  # fetched files, one at a time

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        size = len(next(iter(batch.values())))
        records, notices = zip(*(self._record(batch, i) for i in range(size))) if size else ((), ())
        table = pa.Table.from_pylist(list(records), schema=RECORD_SCHEMA)
        if self.for_command:
            table = table.append_column("json", pa.array([json.dumps(r) for r in records], pa.string()))
            table = table.append_column("notice", pa.array(list(notices), pa.string()))
        return table

    def _record(self, batch: dict[str, np.ndarray], i: int) -> tuple[dict, str | None]:
        """(record, notice or None) of row i."""
        name = str(batch["path"][i]) if "path" in batch else None
        try:
            if "image" in batch:
                return self._from_array(batch["image"][i], name), None
            if "bytes" in batch:
                return self._from_bytes(bytes(batch["bytes"][i]), name)
            if name is None:
                raise ValueError("a row needs an 'image', 'bytes' or 'path' column")
            if _URI.match(name):
                return self._from_bytes(_fetch(name), name)
            record, _, notice = predict_record(self.landmarker, Path(name))
            return record, notice
        except ImageError as e:
            return _error_record(name, str(e)), None
        except Exception as e:  # noqa: BLE001 -- on a cluster one bad input must never fail the job
            why = f"cannot predict {name!r}: {type(e).__name__}: {' '.join(str(e).split())}"
            return _error_record(name, why), None

    def _from_array(self, image, name: str | None) -> dict:
        image = np.asarray(image)
        faces = self.landmarker.detect(image)
        return {"image": name, "width": int(image.shape[1]), "height": int(image.shape[0]),
                "faces": [f.to_dict() for f in faces], "error": None}

    def _from_bytes(self, data: bytes, name: str | None) -> tuple[dict, str | None]:
        """(record, notice) of an image file's bytes: written to a scratch file, so it is read exactly as a local
        file (huge images never decoded whole, the same errors), then named after its source."""
        suffix = PurePosixPath((name or "").split("?")[0]).suffix[:12]
        scratch = Path(self.scratch.name) / f"input{suffix}"
        scratch.write_bytes(data)
        try:
            record, _, notice = predict_record(self.landmarker, scratch)
        finally:
            scratch.unlink(missing_ok=True)
        shown = name or "<image bytes>"
        record["image"] = name
        if record["error"]:
            record["error"] = record["error"].replace(str(scratch), shown)
        return record, None if notice is None else notice.replace(str(scratch), shown)


def _error_record(name: str | None, error: str) -> dict:
    return {"image": name, "width": None, "height": None, "faces": [], "error": error}


def _fetch(uri: str) -> bytes:
    """The bytes of a file named by a URI (pyarrow's file systems, or http(s)). Raises ImageError."""
    try:
        if uri.lower().startswith(("http://", "https://")):
            with urllib.request.urlopen(uri, timeout=URL_TIMEOUT_S) as response:
                return response.read()
        filesystem, path = pafs.FileSystem.from_uri(uri)
        with filesystem.open_input_stream(path) as stream:
            return stream.read()
    except FileNotFoundError:
        raise ImageError(f"cannot read image {uri!r}: no such file") from None
    except (OSError, ValueError, pa.ArrowException) as e:
        raise ImageError(f"cannot read image {uri!r}: {' '.join(str(e).split())}") from None


def _worker_options(options: LandmarkerOptions, num_cpus: float) -> LandmarkerOptions:
    """Landmarker options for an actor: as many threads as the CPUs it holds, unless given."""
    return options.replace(threads=options.threads or max(1, int(num_cpus)))


def _check_landmarker(options: LandmarkerOptions) -> None:
    """Build the Landmarker once here: a model that cannot load fails at once, in one line, not in every actor."""
    from facemark.landmarker import Landmarker

    Landmarker.from_options(options)


def _batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


def _pool(workers, num_cpus: float, num_gpus: float, batches: int | None = None) -> dict:
    """ActorPoolStrategy arguments for `workers`: an int is a fixed pool, (min, max) one that grows with the
    work. None: as many actors as the cluster's CPUs (GPUs) hold: a fixed pool when the number of `batches` is
    known, which means the data is already in memory; else a pool from 1 up to that, so the dataset's read
    tasks are never left without a CPU (a fixed pool holding every CPU would starve them). A fixed pool never
    has more actors than batches: the others would only start and wait."""
    if isinstance(workers, tuple) and len(workers) == 2 and all(isinstance(w, int) and w >= 1 for w in workers):
        return {"min_size": min(workers), "max_size": max(workers)}
    if workers is None:
        if not ray.is_initialized():
            ray.init()  # what Ray Data itself would do on first use
        resources = ray.cluster_resources()
        if num_gpus:
            capacity = int(resources.get("GPU", 0) // num_gpus)
        else:
            capacity = int(resources.get("CPU", 1) // max(num_cpus, 1e-9))
        capacity = max(1, capacity)
        if batches is None:
            return {"min_size": 1, "max_size": capacity}
        workers = capacity
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer or (min, max), got {workers!r}")
    return {"size": min(workers, batches or workers)}


# ---------------------------------------------------------------------------------------------- command line


def predict_on_ray(options: LandmarkerOptions, inputs: list[str], *, address: str | None = None,
                   json_path: str | Path | None = None, parquet_path: str | None = None, progress: bool = True,
                   shard: tuple[int, int] | None = None, resume: bool = False, workers: int | None = None,
                   batch_size: int = DEFAULT_BATCH_SIZE) -> PredictSummary:
    """`facemark predict INPUTS --ray [ADDRESS]`: the plain run's records (facemark.cli.predict.predict_inputs), each
    input once, in input order, computed by a pool of Ray actors.

    options: the LandmarkerOptions (`threads` is ignored: one per actor). inputs: image files, folders,
    globs (as the plain run), list files (`*.txt`, one path or URL a line; relative paths from the current
    folder), or URIs of files or folders (`s3://bucket/photos/`). address: "local" or None starts a local
    cluster for this run (`workers` CPUs, default all) and stops it at the end; "auto", "HOST:PORT" or
    "ray://HOST:10001" connects to a running one; a Ray already initialised in this process is used as it is.
    json_path: JSON Lines ("-" standard output); parquet_path: a Parquet file (a local path or a URI) of
    RECORD_SCHEMA, written under a temporary name and renamed when complete (local paths). shard, resume: as in
    the plain run (resume appends to json_path). workers: actors, default the cluster's CPUs.
    Raises facemark.cli.outputs.OutputError (an OSError) when an output cannot be written, before anything else;
    ImageError when no input names an image, ValueError for bad options, RuntimeError when Ray cannot be
    started or reached or the job fails. The summary's `notices` are the plain run's (not failures).
    """
    if resume and (json_path is None or str(json_path) == "-"):
        raise ValueError("resuming needs a JSON file to resume")
    if json_path is not None and str(json_path) != "-":  # outputs first: one error before any work
        check_writable_file(json_path, in_place=True)
    if parquet_path is not None and not _URI.match(str(parquet_path)):
        check_writable_file(parquet_path)
    options = options.replace(threads=1)
    _check_landmarker(options)  # a bad --model fails before Ray starts
    done = predicted_images(json_path) if resume else set()
    summary = PredictSummary()
    names = []
    for name in _predict_names(inputs):
        if shard is not None and not in_shard(name, *shard):
            summary.other_shards += 1
        elif name in done:
            summary.skipped_existing += 1
        else:
            names.append(name)
    if not names:
        with _Outputs(json_path, parquet_path, resume):  # an empty (or unchanged) output, as the plain run's
            return summary
    # Ray first: a cluster that cannot be reached leaves an existing output as it was
    with (_connected(address, workers), _Outputs(json_path, parquet_path, resume) as out,
          tqdm(total=len(names), desc="predict", unit="img", disable=not progress) as bar):
        blocks = _blocks({"path": names}, batch_size)
        pool = _pool(workers, 1, 0, batches=len(blocks))

        def records() -> ray.data.Dataset:
            return _predicted(ray.data.from_arrow(blocks), options, batch_size=batch_size, pool=pool,
                              for_command=True)

        for table in _batches(records):
            summary.images += table.num_rows
            summary.faces += sum(pc.list_value_length(table.column("faces")).to_pylist())
            summary.failed += [error for error in table.column("error").to_pylist() if error]
            summary.notices += [notice for notice in table.column("notice").to_pylist() if notice]
            out.write(table.column("json").to_pylist(), table.drop_columns(["json", "notice"]))
            bar.update(table.num_rows)
    return summary


def label_on_ray(images_dir: str | Path, out: str | Path, *, address: str | None = None,
                 teacher: str = "mediapipe", workers: int | None = None, progress: bool = True,
                 shard: tuple[int, int] | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> LabelSummary:
    """`facemark label IMAGES --out OUT --ray [ADDRESS]`: facemark.labels.labelling.label_folder's records (appended to
    `out`, images already in it skipped, in folder order), from a pool of Ray actors with one teacher each.
    address, workers: as predict_on_ray. Raises ImageError when `images_dir` is not a folder, RuntimeError when
    the teacher cannot start (a missing extra), Ray cannot be started or reached, or the job fails."""
    from facemark.labels.annotations import ensure_line_end, labelled_images
    from facemark.labels.teachers import create_teacher

    images_dir, out = Path(images_dir), Path(out)
    if not images_dir.is_dir():
        raise ImageError(f"not a folder: {images_dir}")
    create_teacher(teacher).close()  # a teacher that cannot start fails here in one line
    done = labelled_images(out)
    summary = LabelSummary()
    paths, names = [], []
    for path in iter_image_files([images_dir]):
        name = path.relative_to(images_dir).as_posix()
        if shard is not None and not in_shard(name, *shard):
            continue
        if name in done:
            summary.skipped_existing += 1
        else:
            paths.append(str(path))
            names.append(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    ensure_line_end(out)
    if not names:
        return summary
    with (_connected(address, workers), out.open("a", encoding="utf-8") as fh,
          tqdm(total=len(names), desc="label", unit="img", disable=not progress) as bar):
        blocks = _blocks({"path": paths, "name": names}, batch_size)
        pool = _pool(workers, 1, 0, batches=len(blocks))

        def labels() -> ray.data.Dataset:
            return ray.data.from_arrow(blocks).map_batches(
                _Labeller, fn_constructor_args=(teacher,), batch_size=batch_size, batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(**pool), num_cpus=1, max_restarts=-1,
                max_task_retries=DEFAULT_MAX_RETRIES)

        for table in _batches(labels):
            for line, outcome in zip(table.column("line").to_pylist(), table.column("outcome").to_pylist()):
                fh.write(line + "\n")
                setattr(summary, outcome, getattr(summary, outcome) + 1)
            fh.flush()
            bar.update(table.num_rows)
    return summary


def _blocks(columns: dict[str, list[str]], rows: int) -> list[pa.Table]:
    """The columns cut into Arrow tables of `rows` rows: Ray Data's blocks, one batch each, in order."""
    size = len(next(iter(columns.values())))
    return [pa.table({k: v[i:i + rows] for k, v in columns.items()}) for i in range(0, size, rows)]


class _Labeller:
    """A Ray Data actor: one teacher (facemark.labels.labelling's worker), label lines for batches of (path, name)."""

    def __init__(self, teacher: str):
        from facemark.labels import labelling

        labelling._init_worker(teacher)
        self.label_one, self.teacher = labelling._label_one, labelling._teacher

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        from facemark.labels.annotations import LabelRecord

        lines, outcomes = [], []
        for path, name in zip(batch["path"], batch["name"]):
            try:
                line, outcome = self.label_one((str(path), str(name)))
            except Exception as e:  # noqa: BLE001 -- on a cluster one bad input must never fail the job
                reason = f"cannot label {str(name)!r}: {type(e).__name__}: {' '.join(str(e).split())}"
                line = LabelRecord(image=str(name), scheme=self.teacher.scheme, source=self.teacher.source,
                                   error=reason).to_json()
                outcome = "unreadable"
            lines.append(line)
            outcomes.append(outcome)
        return pa.table({"line": lines, "outcome": outcomes}, schema=_LABEL_SCHEMA)


def _predict_names(inputs: Iterable[str]) -> Iterator[str]:
    """The names of the images `inputs` stand for, as the records will name them: local inputs as the plain
    run lists them (missing paths first: their records say "no such file"), then list files and URIs in the
    order given. Raises ImageError when no input exists, or none yields an image."""
    inputs = [os.fspath(item) for item in inputs]
    lists = [item for item in inputs if _is_list(item)]
    uris = [item for item in inputs if _URI.match(item) and item not in lists]
    local = [item for item in inputs if item not in lists and item not in uris]
    missing = [item for item in local if not os.path.exists(item) and not re.search(r"[*?[]", item)]
    present = [item for item in local if item not in missing]
    if not present and not lists and not uris:
        raise ImageError(f"no such file or folder: {missing[0]!r}")
    count = 0
    for name in [*missing, *map(str, iter_image_files(present) if present else [])]:
        count += 1
        yield name
    for item in inputs:
        if item in lists:
            names = _list_file(item)
        elif item in uris:
            names = _list_uri(item)
        else:
            continue
        for name in names:
            count += 1
            yield name
    if count == len(missing):
        raise ImageError(f"no images found in {', '.join(present + lists + uris)}")


def _is_list(item: str) -> bool:
    return PurePosixPath(item.split("?")[0]).suffix.lower() in LIST_SUFFIXES and (
        bool(_URI.match(item)) or os.path.isfile(item))


def _list_file(item: str) -> list[str]:
    """The non-empty lines of a list file (local or a URI) that do not start with '#'."""
    if _URI.match(item):
        text = _fetch(item).decode("utf-8", errors="replace")
    else:
        text = Path(item).read_text(encoding="utf-8", errors="replace")
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _list_uri(uri: str) -> list[str]:
    """A URI's image files: the file itself, or a folder's files with an image suffix, recursively, sorted
    (names starting with "." left out, as in a local folder); http(s) URLs are taken as files."""
    if uri.lower().startswith(("http://", "https://")):
        return [uri]
    try:
        filesystem, path = pafs.FileSystem.from_uri(uri)
        info = filesystem.get_file_info(path)
        if info.type == pafs.FileType.File:
            return [uri]
        if info.type != pafs.FileType.Directory:
            raise ImageError(f"no such file or folder: {uri!r}")
        entries = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
    except (OSError, ValueError, pa.ArrowException) as e:
        if isinstance(e, ImageError):
            raise
        raise ImageError(f"cannot list {uri!r}: {' '.join(str(e).split())}") from None
    base = path.rstrip("/")
    found = []
    for entry in entries:
        relative = PurePosixPath(entry.path[len(base):].lstrip("/"))
        if (entry.type == pafs.FileType.File and relative.suffix.lower() in IMAGE_EXTENSIONS
                and not any(part.startswith(".") for part in relative.parts)):
            found.append(relative.as_posix())
    return [f"{uri.rstrip('/')}/{relative}" for relative in sorted(found)]


@contextlib.contextmanager
def _connected(address: str | None, workers: int | None):
    """Ray for one command: a Ray already initialised in this process as it is; "local" (or None) a local
    cluster for the run (`workers` CPUs, default all), shut down at the end; any other address connected to,
    and left running. Inside, Ray Data keeps the input order and shows none of its own progress bars."""
    started = not ray.is_initialized()
    if started:
        quiet = {"log_to_driver": False, "logging_level": logging.WARNING}  # workers' chatter stays in Ray's logs
        _check_reachable(address)
        try:
            with warnings.catch_warnings():  # Ray Client warns, then raises: the error's one line says it all
                warnings.simplefilter("ignore")
                if address in (None, "local"):
                    ray.init(address="local", num_cpus=workers, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                             include_dashboard=False, **quiet)
                else:
                    _connect(address, quiet)
        except Exception as e:  # noqa: BLE001 -- Ray raises many kinds here; each becomes one line
            where = "a local Ray cluster" if address in (None, "local") else f"the Ray cluster at {address}"
            raise RuntimeError(f"cannot start or reach {where}: {_first_line(e)}") from None
    saved = _command_context()  # before the datasets are made: each copies the context
    try:
        yield
    finally:
        _restore_context(saved)
        if started:
            ray.shutdown()


def _connect(address: str, options: dict) -> None:
    """ray.init(address, **options), asked again when the cluster failed to start this client's server process
    (CLIENT_SERVER_FAILED); Ray Client leaves nothing connected after a refusal."""
    for attempt in range(1, CLIENT_SERVER_TRIES + 1):
        try:
            ray.init(address=address, **options)
            return
        except Exception as e:  # noqa: BLE001 -- Ray raises many kinds here; the caller makes each one line
            if CLIENT_SERVER_FAILED not in str(e) or attempt == CLIENT_SERVER_TRIES:
                raise
        time.sleep(CLIENT_SERVER_PAUSE_S)


def _check_reachable(address: str | None) -> None:
    """A HOST:PORT address is tried with a plain TCP connection first: Ray itself retries an unreachable GCS for
    minutes, printing as it goes."""
    match = re.fullmatch(r"\[?([^\[\]/]+?)\]?:(\d+)", address or "")
    if match is None:
        return
    try:
        socket.create_connection((match.group(1), int(match.group(2))), timeout=REACH_TIMEOUT_S).close()
    except OSError as e:
        raise RuntimeError(f"cannot start or reach the Ray cluster at {address}: "
                           f"{e.strerror or type(e).__name__}") from None


def _batches(build: Callable[[], ray.data.Dataset]) -> Iterator[pa.Table]:
    """The output blocks, in order, of the dataset that `build()` makes; a failed job is one RuntimeError line.

    Through Ray Client (a `ray://` address) Ray Data cannot run in this process: an actor on the cluster makes
    and runs the dataset there, and hands its blocks over one at a time."""
    try:
        if ray_client.is_connected():
            driver = _ClusterDriver.remote(build)
            while (table := ray.get(driver.next_block.remote())) is not None:
                yield table
        else:
            yield from build().iter_batches(batch_format="pyarrow", batch_size=None)
    except ray.exceptions.RayError as e:
        raise RuntimeError(f"the Ray job failed: {_first_line(e)}") from None


@ray.remote(num_cpus=0)
class _ClusterDriver:
    """Runs a command's dataset on the cluster, for a command connected through Ray Client."""

    def __init__(self, build: Callable[[], ray.data.Dataset]):
        _command_context()
        self.blocks = iter(build().iter_batches(batch_format="pyarrow", batch_size=None))

    def next_block(self) -> pa.Table | None:
        return next(self.blocks, None)


def _command_context() -> tuple:
    """Set Ray Data up for a command in this process: input order kept, no progress bars of its own, its INFO
    lines (which would interleave with the records) off. Returns what it changed, for _restore_context."""
    data_log, context = logging.getLogger("ray.data"), ray.data.DataContext.get_current()
    saved = data_log.level, context.execution_options.preserve_order, context.enable_progress_bars
    data_log.setLevel(logging.ERROR)
    context.execution_options.preserve_order, context.enable_progress_bars = True, False
    return saved


def _restore_context(saved: tuple) -> None:
    data_log, context = logging.getLogger("ray.data"), ray.data.DataContext.get_current()
    data_log.level, context.execution_options.preserve_order, context.enable_progress_bars = saved


def _first_line(error: BaseException) -> str:
    """The error's message in one line: its first line, and, when that only announces what follows (ends in a
    colon, as Ray Client's "Initialization failure from server:" before the server's traceback), its last."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    return f"{lines[0]} {lines[-1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]


class _Outputs:
    """Where predict records go: JSON Lines (a file, appended to on resume, or "-" for standard output) and/or
    a Parquet file of RECORD_SCHEMA (a local one written under a temporary name, renamed when complete)."""

    def __init__(self, json_path, parquet_path: str | None, resume: bool):
        self.json_path, self.parquet_path, self.resume = json_path, parquet_path, resume
        self.json = self.parquet = self.parquet_temp = None
        self.pending: list[pa.Table] = []  # records not yet in a Parquet row group

    def __enter__(self) -> _Outputs:
        if self.json_path is not None and str(self.json_path) == "-":
            self.json = sys.stdout
        elif self.json_path is not None:
            Path(self.json_path).parent.mkdir(parents=True, exist_ok=True)
            if self.resume:
                repair_tail(self.json_path)
            self.json = open(self.json_path, "a" if self.resume else "w", encoding="utf-8")
        if self.parquet_path is not None:
            self.parquet_temp = str(self.parquet_path)
            if not _URI.match(self.parquet_temp):
                target = Path(self.parquet_path)
                target.parent.mkdir(parents=True, exist_ok=True)
                self.parquet_temp = str(target.with_name(f".{target.name}.{os.getpid()}.partial"))
            self.parquet = pq.ParquetWriter(self.parquet_temp, RECORD_SCHEMA)
        return self

    def write(self, lines: list[str], table: pa.Table) -> None:
        """One output block: the records as JSON lines, and the same as an Arrow table of RECORD_SCHEMA."""
        if self.json is not None:
            self.json.write("".join(line + "\n" for line in lines))
            self.json.flush()
        if self.parquet is not None:
            self.pending.append(table)
            if sum(t.num_rows for t in self.pending) >= _PARQUET_ROWS:
                self._write_pending()

    def _write_pending(self) -> None:
        if self.pending:
            self.parquet.write_table(pa.concat_tables(self.pending).cast(RECORD_SCHEMA))
            self.pending = []

    def __exit__(self, kind, value, traceback) -> None:
        if self.json is not None and self.json is not sys.stdout:
            self.json.close()
        if self.parquet is None:
            return
        if kind is None:
            self._write_pending()
        self.parquet.close()
        if self.parquet_temp != str(self.parquet_path):
            if kind is None:
                os.replace(self.parquet_temp, self.parquet_path)
            else:
                Path(self.parquet_temp).unlink(missing_ok=True)
