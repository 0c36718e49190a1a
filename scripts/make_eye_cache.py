"""A face88 fine-tuning cache that shows closed, half-closed and winking eyes and open mouths often, labelled so
that the rest of the face stays where the shipped network puts it.

    python scripts/make_eye_cache.py \\
        --mined work/eyes/celeba.jsonl=../shared/data/celeba/images --mined work/eyes/celeba_more.jsonl=work/celeba_more \\
        --mined work/eyes/utkface.jsonl=work/utkface --video work/lp_frames \\
        --human work/human68 --human-val work/human68_val --out work/cache_eyes

Faces: MediaPipe's observations of `scripts/mine_eyes.py` (photos) and `scripts/label_video_frames.py` (talking-head
frames). A photo's eyes are "closed" when either eye's openness is under 0.15 (its copies: `--repeat-closed`),
"half-closed" under 0.22 (`--repeat-half`); a mouth "open" over `--open-mouth` (`--repeat-mouth`); `--ordinary`
other photos drawn at random; every video frame once, those with an eye under 0.22 twice. Photos of CelebA's
validation identities (10%, facemark.labels.cache.is_validation_identity) are left out: benchmarks/eyelids.py
measures closed-eye photos on them.

Labels (88 points): the shipped face88 network's own points (the crop and its mirror image averaged), so what is
not an eye stays as it was taught; each eye's 8 points are MediaPipe's (refined landmarks), moved by the
similarity that puts MediaPipe's two corners on the network's: the corners stay the network's, the lids open
and close as MediaPipe's do. The ensemble teacher's lids are MediaPipe's lids carried by a warp of the shared
points (facemark.labels.ensemble: no lid point is among the 34 the teachers blend), so on an open eye the two
agree; on a shut one only MediaPipe's lids close (benchmarks/results/eyelids.md, the teacher table).
`--mouth` does the same for the 10 inner-lip points (moved by the similarity of the outer mouth corners).
Human faces (scripts/make_human_split.py): their 34 shared points only, framed like make_joint_cache.py; the
held-out ones are the validation split.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]

from facemark.images import ImageError, load_image  # noqa: E402
from facemark.labels.annotations import read_pts_folder  # noqa: E402
from facemark.labels.cache import context_transform, identity_of, is_validation_identity  # noqa: E402
from facemark.labels.ensemble import fit_box_map, map_box  # noqa: E402
from facemark.layouts import FACE88, FACE88_ANCHORS, IBUG68, ibug68_as_face88  # noqa: E402
from facemark.pipeline.crops import DEFAULT_MARGIN, DEFAULT_SIZE, box_from_points, crop_image  # noqa: E402
from facemark.train.augment import centre_view  # noqa: E402
from facemark.train.weights import load_weights  # noqa: E402

CLOSED, HALF = 0.15, 0.22  # eye openness (EAR) under which an eye counts as closed / half-closed
MIN_FACE_PX = 40
INNER_LIPS = np.arange(12, 22)  # offsets in the mouth region (facemark.geometry.openness)


def read_observations(path: Path) -> list[dict]:
    return [d for d in map(json.loads, path.read_text().splitlines()) if d.get("mp88") is not None]


def similarity(src: np.ndarray, dst: np.ndarray):
    """The 2-D similarity (as a function) that maps the two points `src` onto the two points `dst`."""
    s = complex(*(src[1] - src[0]))
    d = complex(*(dst[1] - dst[0]))
    k = d / s if abs(s) > 1e-9 else 1.0

    def apply(p: np.ndarray) -> np.ndarray:
        z = (p[:, 0] - src[0, 0]) + 1j * (p[:, 1] - src[0, 1])
        w = z * k
        return np.stack([w.real + dst[0, 0], w.imag + dst[0, 1]], axis=1)
    return apply


def teacher_parts(network: np.ndarray, mediapipe: np.ndarray, mouth: bool) -> np.ndarray:
    """The label: the network's points, with MediaPipe's eyes (and inner lips) moved onto its corners."""
    out = network.copy()
    for eye in ("left_eye", "right_eye"):
        s = FACE88.region_slice(eye)
        corners = [s.start, s.start + 4]
        out[s] = similarity(mediapipe[corners], network[corners])(mediapipe[s])
    if mouth:
        s = FACE88.region_slice("mouth")
        corners = [s.start, s.start + 6]
        inner = s.start + INNER_LIPS
        out[inner] = similarity(mediapipe[corners], network[corners])(mediapipe[inner])
    return out


@torch.no_grad()
def network_points(model, crops: np.ndarray, mp_crop: np.ndarray, size: int) -> np.ndarray:
    """The network's points in context-crop pixels for a batch of context crops (the crop and its mirror averaged)."""
    out_size = model.config.input_size
    x, view = centre_view(torch.from_numpy(crops), torch.from_numpy(mp_crop.astype(np.float32)), size, out_size, FACE88)
    pred = model.to_pixels(model(x)).numpy().astype(np.float64)
    mirrored = model.to_pixels(model(x.flip(-1))).numpy().astype(np.float64)
    pred = (pred + FACE88.flip_points(mirrored, out_size)) / 2
    # network view -> context crop: the same map the teacher's points went through (a scale and a shift)
    k = out_size / size
    offset = mp_crop - ((view.numpy() + 0.5) / k - 0.5)
    return (pred + 0.5) / k - 0.5 + offset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mined", action="append", default=[], metavar="OBS=IMAGES")
    p.add_argument("--video", help="folder of scripts/label_video_frames.py (its *.jsonl)")
    p.add_argument("--human", required=True)
    p.add_argument("--human-val", required=True)
    p.add_argument("--repeat-closed", type=int, default=4)
    p.add_argument("--repeat-half", type=int, default=2)
    p.add_argument("--repeat-mouth", type=int, default=2)
    p.add_argument("--repeat-human", type=int, default=2)
    p.add_argument("--open-mouth", type=float, default=0.3, help="mouth openness over which a mouth is open")
    p.add_argument("--ordinary", type=int, default=8000, help="other photos drawn at random")
    p.add_argument("--mouth", action="store_true", help="inner lips from MediaPipe too")
    p.add_argument("--weights", default="face88", help="the network whose points label the rest of the face")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    rng = random.Random(a.seed)

    # (image path, mediapipe88 in image pixels, name, repeats)
    teacher, counts = [], {"closed": 0, "half": 0, "mouth": 0, "ordinary": 0, "video": 0, "video_low": 0}
    ordinary = []
    for spec in a.mined:
        obs, _, images = spec.partition("=")
        for d in read_observations(Path(obs)):
            if is_validation_identity(identity_of(d["image"]), 0.1):
                continue
            mp88 = np.asarray(d["mp88"])
            box = box_from_points(mp88)
            if box[2] - box[0] < MIN_FACE_PX:
                continue
            eye = min(d["eyes"])
            row = (Path(images) / d["image"], mp88, d["image"])
            if eye < CLOSED:
                teacher.append(row + (a.repeat_closed,)), counts.__setitem__("closed", counts["closed"] + 1)
            elif eye < HALF:
                teacher.append(row + (a.repeat_half,)), counts.__setitem__("half", counts["half"] + 1)
            elif d["mouth"] > a.open_mouth:
                teacher.append(row + (a.repeat_mouth,)), counts.__setitem__("mouth", counts["mouth"] + 1)
            else:
                ordinary.append(row + (1,))
    rng.shuffle(ordinary)
    teacher += ordinary[:a.ordinary]
    counts["ordinary"] = min(a.ordinary, len(ordinary))
    if a.video:
        for jsonl in sorted(Path(a.video).glob("*.jsonl")):
            for d in read_observations(jsonl):
                low = min(d["eyes"]) < HALF
                teacher.append((Path(a.video) / d["image"], np.asarray(d["mp88"]), "video/" + d["image"], 2 if low else 1))
                counts["video"] += 1
                counts["video_low"] += low

    # human faces: 34 points; framed on the face88 box their shared points predict (fitted on the teacher faces)
    mp_all = np.array([t[1] for t in teacher[:5000]])
    shared_to_full = fit_box_map(np.array([box_from_points(m[FACE88_ANCHORS]) for m in mp_all]),
                                 np.array([box_from_points(m) for m in mp_all]))
    val_names = {r.image for r in read_pts_folder(Path(a.human_val)) if r.scheme == IBUG68.name}
    human = [(Path(a.human) / r.image, ibug68_as_face88(r.points), r.image)
             for r in read_pts_folder(Path(a.human)) if r.scheme == IBUG68.name]
    print(f"photos: {counts['closed']} closed (x{a.repeat_closed}), {counts['half']} half-closed (x{a.repeat_half}), "
          f"{counts['mouth']} open mouths (x{a.repeat_mouth}), {counts['ordinary']} ordinary; video frames: "
          f"{counts['video']} ({counts['video_low']} x2); human: {sum(h[2] not in val_names for h in human)} "
          f"x{a.repeat_human}, {len(val_names)} held out", flush=True)

    model = load_weights(a.weights).eval()
    probe = context_transform((0, 0, 10, 10), a.size, DEFAULT_MARGIN)
    total = (sum(t[3] for t in teacher) + sum(a.repeat_human for h in human if h[2] not in val_names)
             + sum(h[2] in val_names for h in human))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    crops = np.lib.format.open_memmap(out / "crops.npy", mode="w+", dtype=np.uint8,
                                      shape=(total, probe.size, probe.size, 3))
    points = np.full((total, 88, 2), np.nan, np.float32)
    val = np.zeros(total, bool)
    names, n = [], 0

    batch = []  # teacher faces wait in batches for the network's points

    def flush() -> None:
        nonlocal n
        if not batch:
            return
        c = np.stack([b[0] for b in batch])
        mp = np.stack([b[1] for b in batch])
        net = network_points(model, c, mp, a.size)
        for (crop, mp_crop, name, reps), q in zip(batch, net):
            label = teacher_parts(q, mp_crop, a.mouth)
            for _ in range(reps):
                crops[n], points[n] = crop, label
                names.append(name)
                n += 1
        batch.clear()

    for path, mp88, name, reps in tqdm(teacher, desc="teacher faces", unit="face", mininterval=10):
        try:
            image = load_image(path)
        except ImageError as e:
            print(f"skipped: {e}")
            continue
        transform = context_transform(box_from_points(mp88), a.size, DEFAULT_MARGIN)
        batch.append((crop_image(image, transform), transform.to_crop(mp88), name, reps))
        if len(batch) == 256:
            flush()
    flush()
    for path, pts, name in tqdm(human, desc="human faces", unit="face", mininterval=10):
        is_val = name in val_names
        image = load_image(path)
        transform = context_transform(map_box(box_from_points(pts[FACE88_ANCHORS]), shared_to_full), a.size,
                                      DEFAULT_MARGIN)
        crop, label = crop_image(image, transform), transform.to_crop(pts)
        for _ in range(1 if is_val else a.repeat_human):
            crops[n], points[n], val[n] = crop, label, is_val
            names.append(f"human/{name}")
            n += 1
    crops.flush()
    del crops
    if n != total:  # unreadable images: keep the written part
        arr = np.load(out / "crops.npy", mmap_mode="r")[:n]
        np.save(out / "crops_tmp.npy", arr)
        (out / "crops_tmp.npy").replace(out / "crops.npy")
    np.save(out / "points.npy", points[:n])
    np.save(out / "val.npy", val[:n])
    meta = {"scheme": FACE88.to_dict(), "size": a.size, "margin": DEFAULT_MARGIN, "context": probe.size / a.size,
            "count": n, "train_count": int((~val[:n]).sum()), "val_count": int(val[:n].sum()),
            "labels": " ".join(sys.argv[1:]), "images": names, "counts": counts}
    (out / "meta.json").write_text(json.dumps(meta))
    print(f"{n} faces -> {out}")


if __name__ == "__main__":
    main()
