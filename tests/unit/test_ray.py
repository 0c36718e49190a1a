"""facemark on Ray (issue 23): `predict --ray`, `label --ray` and `facemark.ray.predict_dataset` give the plain
run's records, bad files included; a worker process killed in the middle of a run is retried by Ray and every
input is still recorded exactly once.

One local Ray cluster (`ray start --head`: 2 CPUs, a 300 MB object store, a Ray Client port) is started for the
module and stopped after it. Most commands run in this process, on the Ray initialised here; the one whose
worker is killed and the one through Ray Client (`ray://`) run as commands of their own.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemark.cli import main

ray = pytest.importorskip("ray", reason="the `ray` extra is not installed")

REPO = Path(__file__).resolve().parents[2]
ASTRONAUT = REPO / "examples" / "astronaut.png"
BAD_FILES = {"text.jpg": b"<html>not found</html>\n", "empty.png": b""}
ACTOR_TITLE = "ray::MapWorker(MapBatches(_Predictor))"  # the process title Ray gives predict's actors


@pytest.fixture(scope="module")
def head():
    """A local Ray cluster for this module, this process connected to it: its (GCS address, Ray Client port,
    temporary folder, where its logs are)."""
    gcs, client = _free_port(), _free_port()
    # stopped by SIGTERM: at once, without the grace period a Kubernetes pod would get. Its Ray Client server
    # starts a server process per client and gives up on it after 30 s by default: on a loaded 2-core machine
    # that start can take longer, so it waits as long as the test's own limit
    env = dict(os.environ, RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0", RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S="300")
    # its own short temporary folder (Ray's sockets live there): the machine's /tmp/ray, where `ray.init()`
    # finds the last cluster `ray start` started, is left as it was
    temp = tempfile.mkdtemp(prefix="fmray")
    command = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--num-cpus=2",
               f"--port={gcs}", f"--ray-client-server-port={client}", "--include-dashboard=false",
               f"--object-store-memory={300 * 1024 * 1024}", f"--temp-dir={temp}"]
    log = Path(temp) / "ray_start.log"
    with log.open("w") as output:
        started = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                ray.init(address=f"127.0.0.1:{gcs}", log_to_driver=False, logging_level=logging.WARNING)
                break
            except ConnectionError:
                if started.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"`ray start` did not start a cluster: {log.read_text()[-2000:]}")
                time.sleep(0.5)
        # `ray start` brings the Ray Client server up after the cluster itself, as a process of its own: a client
        # that connects before it listens is refused. Wait for it here, so that no test depends on the race
        _wait_for_listener(client, started, log)
        yield f"127.0.0.1:{gcs}", client, Path(temp)
    finally:
        ray.shutdown()
        started.send_signal(signal.SIGTERM)
        try:
            started.wait(timeout=60)
        except subprocess.TimeoutExpired:
            started.kill()
            started.wait()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(head) -> str:
    """The module's Ray cluster: its address (HOST:PORT)."""
    return head[0]


def _wait_for_listener(port: int, started: subprocess.Popen, log: Path, seconds: float = 300) -> None:
    """Return once something accepts connections on 127.0.0.1:`port`; fail the test, saying why, if `ray start`
    ends or nothing listens within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        with socket.socket() as probe:
            probe.settimeout(5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        if started.poll() is not None:
            pytest.fail(f"`ray start` ended (exit {started.returncode}) before its Ray Client server listened on "
                        f"port {port}: {log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"the Ray Client server did not listen on port {port} within {seconds:.0f} s: "
                        f"{log.read_text()[-2000:]}")
        time.sleep(0.5)


def _client_server_logs(temp: Path, lines: int = 40) -> str:
    """The last lines of the cluster's Ray Client server logs (the proxy's and each client's own server's) and of
    its runtime-env agent's (which the proxy asks before it starts a client's server): where the reason a client
    was refused is written. Every such file is named with its size, the empty ones too (a client's server that
    never got as far as listening writes nothing)."""
    folder = temp / "session_latest" / "logs"
    logs = sorted(folder.glob("ray_client_server*")) + sorted(folder.glob("runtime_env*"))
    parts = []
    for log in logs:
        text = log.read_text(errors="replace").strip().splitlines()[-lines:]
        parts.append(f"--- {log.name} ({log.stat().st_size} bytes)" + (":\n" + "\n".join(text) if text else ""))
    return "\n".join(parts) or f"(no Ray Client server logs under {temp})"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _write_bad_files(folder: Path) -> None:
    for name, data in BAD_FILES.items():
        (folder / name).write_bytes(data)
    (folder / "cut.png").write_bytes(ASTRONAUT.read_bytes()[:3000])  # a PNG cut off in its pixel data


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Faces upright, mirrored, turned by 90°, small (in a subfolder), cut by the image's bottom edge (points
    outside the image) and in an animated GIF (read on its first frame, with a notice); a face-less gray
    image; three files that are no readable image."""
    folder = tmp_path_factory.mktemp("photos")
    image = Image.open(ASTRONAUT).convert("RGB")
    image.save(folder / "astronaut.png")
    image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "mirrored.jpg", quality=92)
    image.transpose(Image.Transpose.ROTATE_90).save(folder / "turned.png")
    image.crop((0, 0, 512, 140)).save(folder / "chin_cut.png")  # the face ends at y 173
    small = image.resize((200, 200), Image.Resampling.LANCZOS)
    small.save(folder / "anim.gif", save_all=True, duration=100, loop=0,
               append_images=[small.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    (folder / "sub").mkdir()
    small.save(folder / "sub" / "small.png")
    Image.new("RGB", (120, 90), (128, 128, 128)).save(folder / "gray.png")
    _write_bad_files(folder)
    return folder


@pytest.fixture(scope="module")
def plain_run(photos, tmp_path_factory) -> tuple[list[dict], list[str]]:
    """The plain run's records of `photos` (`facemark predict`, no Ray) and its stderr lines."""
    out = tmp_path_factory.mktemp("plain") / "plain.jsonl"
    done = subprocess.run([sys.executable, "-m", "facemark", "predict", str(photos), "--json", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr  # the bad files fail
    records = _read_jsonl(out)
    assert len([r for r in records if r["faces"]]) == 6, "the six face images should each show a face"
    assert sum(r["error"] is not None for r in records) == 3
    assert any(face.get("outside") for r in records for face in r["faces"]), "no point outside an image"
    return records, done.stderr.splitlines()


@pytest.fixture(scope="module")
def plain_records(plain_run) -> list[dict]:
    return plain_run[0]


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_same_record(got: dict, expected: dict) -> None:
    """The same fields, image size, error and faces; boxes and points within 0.01 px, scores and trust within
    1e-4, the same points outside the image. A field that is null in an Arrow row (a record's `truncated`, a
    face's `outside`) is one the JSON leaves out."""
    assert {k for k, v in got.items() if v is not None or k in expected} == set(expected), got["image"]
    assert (got["width"], got["height"], got["error"]) == (expected["width"], expected["height"],
                                                          expected["error"]), got["image"]
    assert len(got["faces"]) == len(expected["faces"]), got["image"]
    for face, other in zip(got["faces"], expected["faces"]):
        face = {k: v for k, v in face.items() if v is not None}
        assert set(face) == set(other), got["image"]
        np.testing.assert_allclose(face["points"], other["points"], atol=0.01, rtol=0)
        np.testing.assert_allclose(face["box"], other["box"], atol=0.01, rtol=0)
        assert abs(face["score"] - other["score"]) <= 1e-4
        assert abs(face["trust"] - other["trust"]) <= 1e-4
        assert face.get("outside") == other.get("outside"), got["image"]


def assert_same_records(got: list[dict], expected: list[dict]) -> None:
    """The same records, each image once (names compared as given; order is the caller's business)."""
    names = [r["image"] for r in got]
    assert len(names) == len(set(names)), "an input was recorded twice"
    by_name = {r["image"]: r for r in got}
    assert set(by_name) == {r["image"] for r in expected}
    for record in expected:
        assert_same_record(by_name[record["image"]], record)


# ---------------------------------------------------------------------------------------------- command line


def test_record_schema_holds_every_field_of_the_plain_records(plain_records):
    """The Arrow schema of predict_dataset and --parquet must grow with the JSON record: a field the plain run
    writes and the schema lacks would be lost there."""
    from facemark.ray import FACE_TYPE, RECORD_SCHEMA

    assert {k for r in plain_records for k in r} <= set(RECORD_SCHEMA.names)
    assert {k for r in plain_records for f in r["faces"] for k in f} <= {FACE_TYPE.field(i).name
                                                                        for i in range(FACE_TYPE.num_fields)}


def test_predict_ray_gives_the_plain_records_in_order_and_as_parquet(cluster, photos, plain_run, tmp_path,
                                                                    capsys):
    import pyarrow.parquet as pq

    plain_records, plain_err = plain_run

    out, table = tmp_path / "ray.jsonl", tmp_path / "records.parquet"
    code = main(["predict", str(photos), "--json", str(out), "--parquet", str(table), "--quiet",
                 f"--ray={cluster}"])
    err = capsys.readouterr().err
    assert code == 1  # as the plain run: some inputs failed
    records = _read_jsonl(out)
    assert [r["image"] for r in records] == [r["image"] for r in plain_records]  # the input order
    assert_same_records(records, plain_records)
    failures = [line for line in err.splitlines() if line.startswith("facemark predict: cannot read image")]
    assert len(failures) == 3
    assert f"{len(plain_records)} images, 6 faces, 3 failed" in err
    notices = [line for line in err.splitlines() if "first frame only" in line]
    assert notices and notices == [line for line in plain_err if "first frame only" in line]
    assert_same_records(pq.read_table(table).to_pylist(), plain_records)
    assert not list(tmp_path.glob(".*partial")), "the Parquet file's temporary name was left behind"


def test_predict_ray_reads_uris_and_list_files(cluster, photos, plain_records, tmp_path, capsys):
    """A folder given as a file:// URI (read through pyarrow's file systems, as s3:// would be) and a list file
    of paths and URLs give the same records under the names given; an unreachable URL is an error record."""
    by_path = {r["image"]: r for r in plain_records}
    listed = [str(photos / "astronaut.png"), str(photos / "text.jpg"), str(photos / "missing.jpg")]
    url = "http://127.0.0.1:9/face.jpg"  # the discard port on this machine: refused at once
    (tmp_path / "list.txt").write_text("# photos to do\n" + "\n".join(listed) + f"\n\n{url}\n")
    out = tmp_path / "uris.jsonl"
    code = main(["predict", photos.as_uri(), str(tmp_path / "list.txt"), "--json", str(out), "--quiet",
                 f"--ray={cluster}"])
    capsys.readouterr()
    assert code == 1
    records = _read_jsonl(out)
    names = [r["image"] for r in records]
    assert len(names) == len(set(names)) == len(plain_records) + len(listed) + 1
    for record in records[:len(plain_records)]:  # the folder's files, named by their URIs
        path = record["image"].removeprefix("file://")
        expected = dict(by_path[path])
        if expected["error"]:
            expected["error"] = expected["error"].replace(path, record["image"])
        assert_same_record(record, expected)
    listed_records = records[len(plain_records):]
    assert [r["image"] for r in listed_records] == [*listed, url]
    assert_same_record(listed_records[0], by_path[listed[0]])
    assert_same_record(listed_records[1], by_path[listed[1]])
    assert listed_records[2]["error"] == f"cannot read image {listed[2]!r}: no such file"
    assert listed_records[3]["error"].startswith(f"cannot read image {url!r}: ")
    assert listed_records[3]["faces"] == []


def test_predict_ray_through_ray_client_gives_the_plain_records(head, photos, plain_run, plain_records, tmp_path):
    """`--ray ray://HOST:PORT`: Ray Data cannot run in a Ray Client process, so the job runs in an actor on the
    cluster and its records come back to the command."""
    out = tmp_path / "client.jsonl"
    # the cluster starts a server process for each client; on a loaded 2-core machine that can outlast Ray
    # Client's waits (5 s at first, 30 s at most, three tries): the client waits as long as the cluster does
    env = dict(os.environ, RAY_CLIENT_INITIAL_CONNECTION_TIMEOUT_S="100", RAY_CLIENT_MAX_CONNECTION_TIMEOUT_S="100")
    command = [sys.executable, "-m", "facemark", "predict", str(photos), "--json", str(out), "--quiet",
               "--ray", f"ray://127.0.0.1:{head[1]}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    # exit 1 is expected (the bad files), so the output must exist and the failures must be the bad files' own:
    # a refused connection also exits 1, and its line is what this assertion then shows
    assert out.exists(), (f"no output; the command said (exit {done.returncode}):\n{done.stderr}\nthe cluster's "
                          f"Ray Client server logs:\n{_client_server_logs(head[2])}")
    failures = [line for line in done.stderr.splitlines() if line.startswith("facemark predict: cannot")]
    expected = [line for line in plain_run[1] if line.startswith("facemark predict: cannot")]
    assert (done.returncode, failures) == (1, expected), done.stderr
    records = _read_jsonl(out)
    assert [r["image"] for r in records] == [r["image"] for r in plain_records]
    assert_same_records(records, plain_records)


def test_a_killed_worker_is_retried_and_every_input_is_recorded_once(cluster, tmp_path):
    """`facemark predict --ray=ADDRESS` in a process of its own; once its first records are written, one of its
    actor processes is killed (SIGKILL, by its pid). The run completes: each input exactly once."""
    folder = tmp_path / "many"
    folder.mkdir()
    for k in range(240):
        (folder / f"face{k:03d}.png").symlink_to(ASTRONAUT)
    _write_bad_files(folder)
    out = tmp_path / "killed.jsonl"
    command = [sys.executable, "-m", "facemark", "predict", str(folder), "--json", str(out), "--quiet",
               f"--ray={cluster}"]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    killed, written_then = None, None
    try:
        deadline = time.monotonic() + 240
        while run.poll() is None and killed is None and time.monotonic() < deadline:
            written = len(out.read_text().splitlines()) if out.exists() else 0
            actors = _actor_pids()
            if written >= 1 and actors:
                os.kill(actors[0], signal.SIGKILL)
                killed, written_then = actors[0], written
            time.sleep(0.05)
        _, err = run.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    inputs = 240 + 3
    assert killed is not None, "the run ended before a worker could be killed"
    assert written_then < inputs, "the worker was killed after the last record"
    assert not _alive(killed)
    assert run.returncode == 1, err  # the three bad files
    records = _read_jsonl(out)
    names = [r["image"] for r in records]
    assert len(names) == len(set(names)) == inputs, "a record was lost or written twice"
    assert set(names) == {str(p) for p in folder.iterdir()}
    faces = [r for r in records if not r["error"]]
    assert len(faces) == 240 and all(len(r["faces"]) == 1 for r in faces)
    for record in faces[1:]:  # one image behind every link: one record
        assert_same_record(record, faces[0])
    assert f"{inputs} images, 240 faces, 3 failed" in err


def test_predict_ray_alone_starts_a_local_cluster_and_keeps_stdout_to_the_records(photos, plain_records):
    """`--ray` without an address, in a process of its own: a local cluster for the run; standard output holds
    the JSON Lines and nothing else (Ray's chatter goes to stderr or its logs)."""
    one = str(photos / "astronaut.png")
    done = subprocess.run([sys.executable, "-m", "facemark", "predict", one, "--quiet", "--workers", "1", "--ray"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(records) == 1
    assert_same_record(records[0], next(r for r in plain_records if r["image"] == one))


def test_a_ray_error_whose_first_line_says_nothing_is_one_line_with_its_cause():
    """Ray Client's "Initialization failure from server:" puts the reason on the server's traceback's last line:
    the one-line error keeps both, so that a refused client says why."""
    from facemark.ray import _first_line

    error = ConnectionAbortedError("Initialization failure from server:\nTraceback (most recent call last):\n"
                                   '  File "proxier.py", line 764, in Datapath\n'
                                   "RuntimeError: Starting Ray client server failed. See "
                                   "ray_client_server_23000.err for detailed logs.\n")
    assert _first_line(error) == ("Initialization failure from server: RuntimeError: Starting Ray client server "
                                  "failed. See ray_client_server_23000.err for detailed logs.")
    assert _first_line(ConnectionError("Connection refused\nmore")) == "Connection refused"
    assert _first_line(RuntimeError("")) == "RuntimeError"


SERVER_NOT_STARTED = ConnectionAbortedError(
    "Initialization failure from server:\nTraceback (most recent call last):\n"
    "RuntimeError: Starting Ray client server failed. See ray_client_server_23000.err for detailed logs.\n")


@pytest.mark.parametrize("failures, error", [(1, SERVER_NOT_STARTED), (2, SERVER_NOT_STARTED), (3, SERVER_NOT_STARTED),
                                             (1, ConnectionError("Connection refused"))])
def test_a_client_server_the_cluster_failed_to_start_is_asked_for_again(monkeypatch, failures, error):
    """The cluster's Ray Client proxy now and then fails to start a client's own server process (CI saw it twice):
    the connection is asked for again, CLIENT_SERVER_TRIES times in all; another refusal is final at once."""
    import facemark.ray as fray

    calls = []

    def init(address=None, **kwargs):
        calls.append(address)
        if len(calls) <= failures:
            raise error

    monkeypatch.setattr(fray, "CLIENT_SERVER_PAUSE_S", 0.0)
    monkeypatch.setattr(fray.ray, "init", init)
    monkeypatch.setattr(fray.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(fray.ray, "shutdown", lambda: None)
    address = "ray://127.0.0.1:10001"
    given_up = failures >= fray.CLIENT_SERVER_TRIES or error is not SERVER_NOT_STARTED
    if given_up:
        with pytest.raises(RuntimeError, match=f"^cannot start or reach the Ray cluster at {address}: "):
            with fray._connected(address, None):
                pass
    else:
        with fray._connected(address, None):
            pass
    assert calls == [address] * (min(failures, fray.CLIENT_SERVER_TRIES) if given_up else failures + 1)


def test_an_unreachable_cluster_is_one_line(tmp_path):
    port = _free_port()  # nothing listens there
    done = subprocess.run([sys.executable, "-m", "facemark", "predict", str(ASTRONAUT), "--json",
                           str(tmp_path / "out.jsonl"), f"--ray=127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0] == (f"facemark predict: error: cannot start or reach the Ray cluster at 127.0.0.1:{port}: "
                        "Connection refused")
    assert not (tmp_path / "out.jsonl").exists()


def _actor_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                title = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if title.startswith(ACTOR_TITLE):
                pids.append(int(entry))
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie is dead, waiting for its parent


def test_label_ray_gives_the_plain_labels(cluster, photos, tmp_path, capsys):
    pytest.importorskip("mediapipe", reason="the `label` extra (MediaPipe) is not installed")
    from facemark.labels.labelling import label_folder

    plain, on_ray = tmp_path / "plain.jsonl", tmp_path / "ray.jsonl"
    label_folder(photos, plain, workers=1, progress=False)
    assert main(["label", str(photos), "--out", str(on_ray), "--quiet", f"--ray={cluster}"]) == 0
    expected, got = _read_jsonl(plain), _read_jsonl(on_ray)
    assert [r["image"] for r in got] == [r["image"] for r in expected]
    assert sum(r["points"] is not None for r in expected) >= 3
    assert sum(r["error"] is not None and r["points"] is None for r in expected) >= 3
    for record, other in zip(got, expected):
        assert {k: v for k, v in record.items() if k != "points"} == {k: v for k, v in other.items() if k != "points"}
        if other["points"] is not None:
            np.testing.assert_allclose(record["points"], other["points"], atol=0.01, rtol=0)
    capsys.readouterr()
    # label always resumes: a second run finds everything done and starts nothing
    assert main(["label", str(photos), "--out", str(on_ray), "--quiet", f"--ray={cluster}"]) == 0
    assert f"already in {on_ray}: {len(expected)}" in capsys.readouterr().out
    assert len(_read_jsonl(on_ray)) == len(expected)


# ---------------------------------------------------------------------------------------------- Python API


@pytest.mark.parametrize("source", ["path", "bytes", "image"])
def test_predict_dataset_gives_the_plain_records(cluster, photos, plain_records, source):
    """Rows of paths, of file bytes (read_binary_files) and of decoded images (read_images): the plain records.
    read_images cannot read the bad files (it fails the whole dataset), so that source gets the good ones."""
    import ray.data

    from facemark.ray import predict_dataset

    if source == "path":
        dataset = ray.data.from_items([{"path": r["image"]} for r in plain_records])
        expected = plain_records
    elif source == "bytes":
        dataset = ray.data.read_binary_files(str(photos), include_paths=True)
        expected = plain_records
    else:
        expected = [r for r in plain_records if r["error"] is None]
        dataset = ray.data.read_images([r["image"] for r in expected], include_paths=True, mode="RGB")
    rows = predict_dataset(dataset, workers=(1, 2), batch_size=4).take_all()
    assert set(rows[0]) == {"image", "width", "height", "faces", "error", "truncated"}
    assert_same_records(rows, expected)


def test_predict_dataset_refuses_what_it_cannot_use(cluster):
    import ray.data

    from facemark.ray import predict_dataset

    with pytest.raises(ValueError, match="'image', 'bytes' or 'path' column"):
        predict_dataset(ray.data.from_items([{"name": "x.jpg"}]))
    with pytest.raises(ValueError, match="min_trust"):
        predict_dataset(ray.data.from_items([{"path": "x.jpg"}]), min_trust=2.0)
    with pytest.raises(ValueError, match="batch_size"):
        predict_dataset(ray.data.from_items([{"path": "x.jpg"}]), batch_size=0)


# ---------------------------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize("extra, message", [
    (["--parquet", "p.parquet"], "--parquet needs --ray"),
    (["--ray", "--draw", "--out", "drawn"], "--draw does not combine with --ray"),
    (["--ray", "--json", "a.jsonl", "--resume", "--parquet", "p.parquet"], "cannot be appended"),
    (["--ray", "."], "is a file or folder, not a cluster address"),
])
def test_ray_usage_errors_come_before_ray_starts(extra, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(ASTRONAUT, tmp_path / "a.png")
    assert main(["predict", "a.png", *extra]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "p.parquet").exists()


def test_predict_ray_marks_a_cut_jpeg_read_as_far_as_it_goes(cluster, tmp_path, capsys):
    """--allow-truncated under --ray: the cut JPEG's record says `truncated` in the JSON and in the Parquet file's
    column, as the plain run's JSON does; whole files have it null there."""
    import pyarrow.parquet as pq

    folder = tmp_path / "in"
    folder.mkdir()
    Image.open(ASTRONAUT).convert("RGB").save(folder / "whole.jpg", quality=92)
    data = (folder / "whole.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(data[:int(len(data) * 0.97)])
    out, table = tmp_path / "ray.jsonl", tmp_path / "records.parquet"
    code = main(["predict", str(folder), "--json", str(out), "--parquet", str(table), "--quiet", "--allow-truncated",
                 f"--ray={cluster}"])
    assert code == 0, capsys.readouterr().err
    records = {Path(r["image"]).name: r for r in _read_jsonl(out)}
    assert records["cut.jpg"]["truncated"] is True and "truncated" not in records["whole.jpg"]
    rows = {Path(r["image"]).name: r for r in pq.read_table(table).to_pylist()}
    assert rows["cut.jpg"]["truncated"] is True and rows["whole.jpg"]["truncated"] is None
    assert len(rows["cut.jpg"]["faces"]) == 1
