"""Eyelids and lips that follow the face: facemark beside MediaPipe Face Mesh on real clips, on closed-eye photos,
and each teacher on faces whose eyes a person can see are shut.

    python benchmarks/eyelids.py                      # built-in face88 -> benchmarks/results/eyelids.md
    python benchmarks/eyelids.py --model runs/x/best.pt --out /tmp/eyelids_x.md
    python benchmarks/eyelids.py --clips ../shared/data/videos/d12.mp4 work/lp/d6.mp4   # other clips
    python benchmarks/eyelids.py --no-refine-eyes --out benchmarks/results/eyelids_no_refiner.md   # lids unrefined

Clips (default: the three of ../shared/data/videos/): facemark through `facemark video`'s tracker with its
defaults (the JSON Lines' smoothed points) and with smoothing off; MediaPipe in video mode (refined landmarks,
mapped to face88). Per clip: eye r (Pearson of the per-frame eye openness, mean of both eyes), eyelid amplitude
(std of facemark's openness over MediaPipe's), MediaPipe's blinks (runs under 0.65 × its median,
`find_blinks`) and how many of them facemark dips on too (its own openness under 0.65 × its own median inside
the run), facemark's and MediaPipe's openness at MediaPipe's deepest closure, mouth r (and how far MediaPipe's
mouth opens: the 95th percentile of its mouth openness), and blink depth
(1 - lowest/median inside MediaPipe's blinks) smoothed and raw: what the One-Euro filter takes off a blink.

Photos: the first `--photos` faces (sorted names) of CelebA's validation identities in ../shared/data/celeba
(identities no shipped model and no eye fine-tune trained on); the closed ones are those whose MediaPipe
(static, refined) eye openness is under 0.15: facemark's mean openness beside MediaPipe's.

Teachers: the faces of `benchmarks/data/closed_eyes.txt` (CelebA validation faces whose lids are shut, picked
by looking at them) and the frames inside the blinks seen on the shared clips (benchmarks/blinks.py):
MediaPipe (static, refined), dlib on its own HOG rectangle (the image upscaled twice, as
scripts/observe_teachers.py), the ensemble of both (the shipped parameters; face88, and iBUG-68, whose lids are
dlib's unless MediaPipe sees the eye shut: `facemark.labels.ensemble.SHUT_EYE`), and facemark, as a still photo.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("GLOG_minloglevel", "2")

from blinks import VISIBLE_BLINKS, mediapipe_openness  # noqa: E402

from facemark import Landmarker  # noqa: E402

from facemark.cli.video import run_video  # noqa: E402
from facemark.geometry.openness import BLINK_SHARE_OF_MEDIAN, eye_openness, find_blinks, mouth_openness  # noqa: E402
from facemark.labels import ensemble, teachers  # noqa: E402
from facemark.labels.cache import identity_of, is_validation_identity  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
CLOSED_LIST = REPO / "benchmarks" / "data" / "closed_eyes.txt"
CLOSED_TEACHER = 0.15  # a photo is "closed" when MediaPipe's mean eye openness is under this
CLOSED_MOUTH = 0.05  # a clip whose MediaPipe mouth openness stays under this (95th percentile) never opens its mouth
REFINE_EYES = True  # facemark's eye refiner (--no-refine-eyes: the landmark network's own lids)


def facemark_series(video: Path, model, workdir: Path, smooth: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per frame (mean eye openness, mouth openness) of the first face in `facemark video`'s JSON Lines."""
    out = workdir / f"{video.stem}_{int(smooth)}.jsonl"
    run_video(Landmarker(model, threads=1, refine_eyes=REFINE_EYES), video, None, json_path=out, progress=False, smooth=smooth)
    eyes, mouth = [], []
    for line in out.read_text().splitlines():
        faces = json.loads(line)["faces"]
        e = faces[0].get("eye_openness") if faces else None
        eyes.append(np.nan if not e or None in e else float(np.mean(e)))
        m = faces[0].get("mouth_openness") if faces else None
        mouth.append(np.nan if m is None else float(m))
    return np.array(eyes), np.array(mouth)


def mediapipe_series(video: Path) -> tuple[np.ndarray, np.ndarray]:
    """Per frame (mean eye openness, mouth openness) of MediaPipe Face Mesh in video mode."""
    eyes, mouth = [], []
    for _, pts in teachers.mediapipe_video_points(video):
        eyes.append(np.nan if pts is None else float(eye_openness(pts).mean()))
        mouth.append(np.nan if pts is None else float(mouth_openness(pts)))
    return np.array(eyes), np.array(mouth)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 2 else float("nan")


def blink_depth(x: np.ndarray, runs) -> float:
    """Mean of 1 - lowest/median over the runs: 0 when the series does not move, ~0.9 for a full blink."""
    med = np.nanmedian(x)
    return float(np.mean([1 - np.nanmin(x[a:b + 1]) / med for a, b in runs])) if runs else float("nan")


def clip_measures(video: Path, model, workdir: Path) -> dict:
    fm_eye, fm_mouth = facemark_series(video, model, workdir, smooth=True)
    raw_eye, _ = facemark_series(video, model, workdir, smooth=False)
    mp_eye, mp_mouth = mediapipe_series(video)
    n = min(len(fm_eye), len(mp_eye))
    fm_eye, fm_mouth, raw_eye, mp_eye, mp_mouth = (x[:n] for x in (fm_eye, fm_mouth, raw_eye, mp_eye, mp_mouth))
    runs = find_blinks(mp_eye)
    fm_thr = BLINK_SHARE_OF_MEDIAN * np.nanmedian(fm_eye)
    dips = sum(bool(np.nanmin(fm_eye[a:b + 1]) < fm_thr) for a, b in runs)
    deepest = int(np.nanargmin(mp_eye))
    ok = np.isfinite(fm_eye) & np.isfinite(mp_eye)
    return {"clip": video.name, "frames": n, "eye_r": pearson(fm_eye, mp_eye),
            "amplitude": float(np.std(fm_eye[ok]) / np.std(mp_eye[ok])), "mp_blinks": len(runs), "dips": dips,
            "fm_at_deepest": float(fm_eye[deepest]), "mp_at_deepest": float(mp_eye[deepest]),
            "mouth_r": pearson(fm_mouth, mp_mouth), "mp_mouth_95": float(np.nanpercentile(mp_mouth, 95)),
            "depth_smoothed": blink_depth(fm_eye, runs),
            "depth_raw": blink_depth(raw_eye, runs), "depth_mp": blink_depth(mp_eye, runs),
            "fm_median": float(np.nanmedian(fm_eye)), "mp_median": float(np.nanmedian(mp_eye))}


def nearest_face(faces, box) -> np.ndarray | None:
    """The points of the face whose box centre is nearest `box`'s centre (the face the teacher labelled)."""
    if not faces:
        return None
    c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    return min(faces, key=lambda f: np.linalg.norm(np.array([(f.box[0] + f.box[2]) / 2,
                                                            (f.box[1] + f.box[3]) / 2]) - c)).points


def validation_photos(count: int) -> list[Path]:
    folder = SHARED / "celeba" / "images"
    return [p for p in sorted(folder.glob("*.jpg")) if is_validation_identity(identity_of(p.name), 0.1)][:count]


def photo_measures(model, count: int) -> dict:
    from facemark.images import load_image

    mp = teachers.MediaPipeTeacher()
    landmarker = Landmarker(model, threads=1, refine_eyes=REFINE_EYES)
    rows = []
    for path in validation_photos(count):
        rgb = load_image(path)
        t = mp.label(rgb)
        if t.points is None:
            continue
        fm = nearest_face(landmarker.detect(rgb), t.box)
        if fm is None:
            continue
        rows.append((path.name, float(eye_openness(t.points).mean()), float(eye_openness(fm).mean())))
    mp.close()
    closed = [r for r in rows if r[1] < CLOSED_TEACHER]
    return {"faces": len(rows), "closed": len(closed),
            "mp_closed": float(np.mean([r[1] for r in closed])) if closed else float("nan"),
            "fm_closed": float(np.mean([r[2] for r in closed])) if closed else float("nan"),
            "mp_all": float(np.mean([r[1] for r in rows])), "fm_all": float(np.mean([r[2] for r in rows]))}


def teacher_measures(model) -> list[dict]:
    """Mean eye openness of each teacher (and facemark) on the listed closed-eye photos and the blink frames."""
    import cv2

    from facemark.images import load_image

    params = ensemble.EnsembleParams.load()
    mp = teachers.MediaPipeTeacher()
    dlib = teachers.DlibTeacher(fallback=None)
    landmarker = Landmarker(model, threads=1, refine_eyes=REFINE_EYES)
    sets = {}
    names = [line.split()[0] for line in CLOSED_LIST.read_text().splitlines() if line.strip() and not line.startswith("#")]
    sets["closed-eye photos (CelebA validation)"] = [load_image(SHARED / "celeba" / "images" / n) for n in names]
    frames = []
    for clip, blinks in VISIBLE_BLINKS.items():
        capture = cv2.VideoCapture(str(SHARED / "videos" / clip))
        wanted = {i for a, b in blinks for i in range(a, b + 1)}
        i = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            if i in wanted:
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            i += 1
        capture.release()
    sets["frames inside the 7 seen blinks (shared clips)"] = frames
    out = []
    for label, images in sets.items():
        values = {"MediaPipe (static)": [], "dlib (HOG rectangle)": [], "ensemble": [], "ensemble (iBUG-68)": [],
                  "facemark": []}
        for rgb in images:
            t = mp.label(rgb)
            big = dlib.upscaled(rgb, 2)
            rects = dlib.detect_upscaled(big, 2)
            d68 = None
            if rects:
                c = None if t.box is None else np.array([(t.box[0] + t.box[2]) / 2, (t.box[1] + t.box[3]) / 2])
                best = (int(np.argmax([(r[2] - r[0]) * (r[3] - r[1]) for r in rects])) if c is None else
                        int(np.argmin([np.linalg.norm(np.array([(r[0] + r[2]) / 2, (r[1] + r[3]) / 2]) - c)
                                       for r in rects])))
                d68 = dlib.shape_upscaled(big, rects[best], 2)
            values["MediaPipe (static)"].append(np.nan if t.points is None else eye_openness(t.points).mean())
            values["dlib (HOG rectangle)"].append(np.nan if d68 is None else eye_openness(d68, "ibug68").mean())
            try:
                values["ensemble"].append(eye_openness(ensemble.ensemble_face88(params, d68, t.points)).mean())
            except (ensemble.EnsembleError, ValueError):
                values["ensemble"].append(np.nan)
            try:
                values["ensemble (iBUG-68)"].append(
                    eye_openness(ensemble.ensemble_ibug68(params, d68, t.points), "ibug68").mean())
            except (ensemble.EnsembleError, ValueError):
                values["ensemble (iBUG-68)"].append(np.nan)
            fm = nearest_face(landmarker.detect(rgb), t.box) if t.box is not None else None
            values["facemark"].append(np.nan if fm is None else eye_openness(fm).mean())
        for tool, v in values.items():
            v = np.array(v, float)
            out.append({"set": label, "tool": tool, "faces": int(np.isfinite(v).sum()), "of": len(v),
                        "mean": float(np.nanmean(v)), "max": float(np.nanmax(v)),
                        "under_015": int((v < 0.15).sum())})
    mp.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="facemark weights (default: the built-in face88)")
    parser.add_argument("--clips", nargs="*", default=[str(SHARED / "videos" / n) for n in ("d12.mp4", "d3.mp4", "s18.mp4")])
    parser.add_argument("--photos", type=int, default=1000, help="CelebA validation faces to scan (0: none)")
    parser.add_argument("--no-teachers", action="store_true", help="skip the teacher table")
    parser.add_argument("--no-refine-eyes", action="store_true",
                        help="facemark without its eye refiner (the landmark network's own lids)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "eyelids.md"))
    args = parser.parse_args()
    global REFINE_EYES
    REFINE_EYES = not args.no_refine_eyes
    name = (args.model or "face88") + ("" if REFINE_EYES else ", without the eye refiner")
    flags = (f" --model {args.model}" if args.model else "") + (" --no-refine-eyes" if args.no_refine_eyes else "")
    flags += "".join(f" --{k} {v}" for k, v in (("photos", args.photos),) if v != 1000)
    flags += " --no-teachers" if args.no_teachers else ""
    if args.out != parser.get_default("out"):
        flags += f" --out {args.out}"
    lines = ["# Eyelids and lips on real clips and closed-eye photos", "",
             f"`python benchmarks/eyelids.py{flags}` (model: {name}); how each figure is made: the benchmark's "
             "docstring.", ""]
    if args.clips:
        with tempfile.TemporaryDirectory() as tmp:
            rows = [clip_measures(Path(c), args.model, Path(tmp)) for c in args.clips]
        lines += ["## Clips: facemark video (defaults) beside MediaPipe Face Mesh (video mode)", "",
                  "| clip | frames | eye r | eyelid amplitude | MediaPipe blinks | facemark dips too | facemark at MP's "
                  "deepest closure | MediaPipe there | mouth r | MediaPipe's mouth openness, 95th percentile | blink depth "
                  "smoothed / raw / MediaPipe |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['clip']} | {r['frames']} | {r['eye_r']:.2f} | {r['amplitude']:.2f} | {r['mp_blinks']} | "
                         f"{r['dips']} | {r['fm_at_deepest']:.3f} | {r['mp_at_deepest']:.3f} | {r['mouth_r']:.2f} | "
                         f"{r['mp_mouth_95']:.3f} | "
                         f"{r['depth_smoothed']:.2f} / {r['depth_raw']:.2f} / {r['depth_mp']:.2f} |")
        total = sum(r["mp_blinks"] for r in rows)
        lines += ["", f"All clips: facemark dips on {sum(r['dips'] for r in rows)} of {total} MediaPipe blinks; "
                  f"eyelid amplitude {min(r['amplitude'] for r in rows):.2f}–{max(r['amplitude'] for r in rows):.2f}; "
                  f"openness at MediaPipe's deepest closure at most {max(r['fm_at_deepest'] for r in rows):.3f}; "
                  f"mouth r {min(r['mouth_r'] for r in rows):.2f}–{max(r['mouth_r'] for r in rows):.2f}"
                  + ("".join(f"; {r['clip']}'s mouth never opens (MediaPipe's openness under {CLOSED_MOUTH} in 95% of "
                             "its frames): nothing to follow, its r is noise" for r in rows
                             if r["mp_mouth_95"] < CLOSED_MOUTH)) + ".", ""]
    if args.photos:
        p = photo_measures(args.model, args.photos)
        lines += ["## Closed-eye photos", "",
                  f"{p['faces']} CelebA validation faces found by both; {p['closed']} with MediaPipe eye openness "
                  f"< {CLOSED_TEACHER}: facemark's mean openness **{p['fm_closed']:.3f}**, MediaPipe's "
                  f"{p['mp_closed']:.3f} (difference {p['fm_closed'] - p['mp_closed']:+.3f}). All faces: facemark "
                  f"{p['fm_all']:.3f}, MediaPipe {p['mp_all']:.3f}.", ""]
    if not args.no_teachers and CLOSED_LIST.is_file():
        rows = teacher_measures(args.model)
        lines += ["## Each teacher on shut eyes", "",
                  "| faces | tool | found | mean eye openness | highest | under 0.15 |", "|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['set']} | {r['tool']} | {r['faces']} of {r['of']} | {r['mean']:.3f} | {r['max']:.3f} | "
                         f"{r['under_015']} |")
        lines.append("")
    lines.append(f"Machine: {platform.machine()}, {os.cpu_count()} cores.")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
