"""`--shard I/N` and `--resume`: N machines split a batch without coordination, a killed run picks up again."""

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from facemark import cli
from facemark.cli.sharding import in_shard, parse_shard, shard_of

ASTRONAUT = Path(__file__).resolve().parents[3] / "examples" / "astronaut.png"


# ------------------------------------------------------------------------------------------ the shard rule


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_shards_partition_the_names(n):
    names = [f"photos/{k:05d}.jpg" for k in range(300)] + ["a.png", "sub/b c.png", "ünï/çödé.jpg", ""]
    owners = {name: [i for i in range(n) if in_shard(name, i, n)] for name in names}
    assert all(len(shards) == 1 for shards in owners.values())  # each name in exactly one shard
    assert all(owners[name] == [shard_of(name, n)] for name in names)
    if n > 1:  # and the work is spread: every shard gets a fair part of 300 names
        sizes = [sum(1 for s in owners.values() if s == [i]) for i in range(n)]
        assert min(sizes) > 300 / n / 2


def test_shard_is_stable():
    # CRC-32 of the UTF-8 path: the same on every machine, in every Python process (no hash randomisation)
    assert shard_of("photos/00001.jpg", 7) == 4292769955 % 7 == 5
    assert [in_shard("x.png", i, 3) for i in range(3)].count(True) == 1


@pytest.mark.parametrize("text, expected", [("0/1", (0, 1)), ("3/4", (3, 4)), (" 2 / 10 ", (2, 10))])
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["4/4", "5/4", "0/0", "-1/4", "1", "1/", "/4", "a/b", "1/2/3", "1.0/2", ""])
def test_parse_shard_rejects_bad_text(text):
    with pytest.raises(ValueError, match="shard"):
        parse_shard(text)


# ------------------------------------------------------------------------------------------------ predict


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """Work in tmp_path on `in/`: two faces and four blank pictures, named by relative paths (stable shards)."""
    monkeypatch.chdir(tmp_path)
    root = Path("in")
    (root / "sub").mkdir(parents=True)
    shutil.copyfile(ASTRONAUT, root / "astronaut.png")
    Image.open(ASTRONAUT).resize((256, 256)).save(root / "sub" / "astronaut_small.jpg")
    for k, colour in enumerate([(0, 0, 0), (255, 255, 255), (90, 120, 30), (10, 10, 200)]):
        Image.new("RGB", (64 + 8 * k, 48), colour).save(root / ("sub" if k % 2 else ".") / f"blank{k}.png")
    return root


def _records(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def _predict(*argv):
    return cli.main(["predict", *map(str, argv), "--quiet", "--threads", "1"])


def test_sharded_predict_covers_every_input_exactly_once(folder):
    assert _predict(folder, "--json", "all.jsonl") == 0
    everything = {r["image"]: r for r in _records("all.jsonl")}
    assert len(everything) == 6
    n = 3
    union = []
    for i in range(n):
        assert _predict(folder, "--json", f"out.{i}.jsonl", "--shard", f"{i}/{n}") == 0
        records = _records(f"out.{i}.jsonl")
        assert all(in_shard(r["image"], i, n) for r in records)
        union += records
    names = [r["image"] for r in union]
    assert len({shard_of(name, n) for name in names}) >= 2  # these names really are split between shards
    assert len(names) == len(set(names))  # no duplicates
    assert set(names) == set(everything)  # nothing lost
    for r in union:  # the same answer whichever machine computed it
        assert len(r["faces"]) == len(everything[r["image"]]["faces"])


def test_resume_after_a_kill_processes_only_the_rest(folder, capsys):
    assert _predict(folder, "--json", "all.jsonl") == 0
    lines = Path("all.jsonl").read_text(encoding="utf-8").splitlines()
    # a run killed while writing its third record: two whole lines, then half a line
    Path("part.jsonl").write_text(lines[0] + "\n" + lines[1] + "\n" + lines[2][: len(lines[2]) // 2])
    capsys.readouterr()
    assert _predict(folder, "--json", "part.jsonl", "--resume") == 0
    err = capsys.readouterr().err
    assert "4 images" in err and "2 already in part.jsonl" in err  # only the rest was predicted
    records = _records("part.jsonl")  # every line is a whole record again
    names = [r["image"] for r in records]
    assert len(names) == len(set(names)) == 6
    assert set(names) == {json.loads(line)["image"] for line in lines}
    assert _predict(folder, "--json", "part.jsonl", "--resume") == 0  # nothing left: nothing added
    assert len(_records("part.jsonl")) == 6
    assert "0 images" in capsys.readouterr().err


def test_resume_with_shard_and_overwrite_without_resume(folder):
    out = Path("out.0.jsonl")
    out.write_text('{"image": "not/in/this/batch.png", "faces": []}\n')
    assert _predict(folder, "--json", out, "--shard", "0/2", "--resume") == 0
    resumed = [r["image"] for r in _records(out)]
    assert resumed[0] == "not/in/this/batch.png" and all(in_shard(n, 0, 2) for n in resumed[1:])
    assert _predict(folder, "--json", out, "--shard", "0/2") == 0  # no --resume: written afresh
    assert [r["image"] for r in _records(out)] == resumed[1:]


def test_worker_processes_give_the_same_records_in_input_order(folder, capsys):
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert _predict(folder, "--json", "one.jsonl") == 1  # the broken file fails, the batch goes on
    assert _predict(folder, "--json", "two.jsonl", "--workers", "2", "--draw", "--out", "drawn") == 1
    one, two = _records("one.jsonl"), _records("two.jsonl")
    assert [r["image"] for r in two] == [r["image"] for r in one] and len(one) == 7
    for a, b in zip(one, two):
        assert a["error"] == b["error"] and len(a["faces"]) == len(b["faces"])
        for fa, fb in zip(a["faces"], b["faces"]):
            assert max(abs(x - y) for pa, pb in zip(fa["points"], fb["points"]) for x, y in zip(pa, pb)) < 0.05
    assert sum(bool(r["faces"]) for r in two) == 2
    # drawings mirror the inputs' paths below in/
    assert sorted(p.relative_to("drawn").as_posix() for p in Path("drawn").rglob("*.png")) == sorted(
        Path(r["image"]).relative_to("in").with_name(f"{Path(r['image']).stem}_landmarks.png").as_posix()
        for r in two if not r["error"])
    assert _predict(folder, "--workers", "0") == 2


@pytest.mark.parametrize("extra", [
    ["--shard", "2/2"], ["--shard", "0/0"], ["--shard", "x"], ["--shard", "-1/3"],
    ["--resume"],  # no --json to resume
    ["--resume", "--json", "-"],  # stdout cannot be resumed
])
def test_predict_usage_errors_exit_2(folder, extra, capsys):
    assert _predict(folder, *extra) == 2
    assert "error:" in capsys.readouterr().err


def test_empty_folder_is_still_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert _predict(tmp_path / "empty", "--shard", "0/2", "--json", tmp_path / "o.jsonl", "--resume") == 1
    assert "no images found" in capsys.readouterr().err


def test_missing_input_fails_before_writing(folder, capsys):
    Path("o.jsonl").write_text("keep\n")
    assert _predict("missing.jpg", "--json", "o.jsonl") == 1
    assert "no such file" in capsys.readouterr().err
    assert Path("o.jsonl").read_text() == "keep\n"


# -------------------------------------------------------------------------------------------------- label


def test_label_shard_labels_only_its_shard(folder, capsys):
    pytest.importorskip("mediapipe")
    from facemark.labels.annotations import read_labels

    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    union, sizes = [], []
    for i in range(3):
        out = Path(f"labels.{i}.jsonl")
        assert cli.main(["label", str(folder), "--out", str(out), "--workers", "1", "--quiet",
                         "--shard", f"{i}/3"]) == 0
        got = [r.image for r in read_labels(out)] if out.exists() else []
        assert all(in_shard(n, i, 3) for n in got)
        union += got
        sizes.append(len(got))
    assert sorted(union) == sorted(names)
    assert sum(1 for k in sizes if k) >= 2  # these names really are split between shards
    assert cli.main(["label", str(folder), "--out", "x.jsonl", "--shard", "1/1"]) == 2
    assert "--shard" in capsys.readouterr().err
