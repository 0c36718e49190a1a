"""`facemark VERB ARGS`: a thin command-line layer over the library.

Exit codes: 0 all went well, 1 some inputs failed (each named on stderr), 2 usage error (bad arguments).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

from facemark.extras import install_hint
from facemark.labels.annotations import AnnotationError
from facemark.detection.core import DEFAULT_DETECTOR, DETECTORS
from facemark.images import ImageError
from facemark.cli.outputs import check_writable_file, check_writable_folder
from facemark.web.cli import add_parser as add_web_parser

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_HEAD_CHANNELS = {"heatmap": 64, "flatten": 48, "gap": 48}
DETECTOR_HELP = ("face detector: blazeface (MediaPipe's BlazeFace on onnxruntime, built in), blazeface-full / "
                 "blazeface-short (one of its two networks), mtcnn (built in, onnxruntime), mediapipe (needs the "
                 "`label` extra), yunet (YuNet on onnxruntime, built in: no false faces on face-free images, "
                 "small faces); compared in benchmarks/results/detectors_by_size.md and detector.md")
BACKEND_HELP = ("landmark network runtime: auto/onnx = onnxruntime (a .pt weights file is exported in memory), "
                "torch = the torch network (both .pt and torch need the train extra)")
RAY_HELP = ("run on a Ray cluster (the `ray` extra): no ADDRESS starts a local one for this run; 'auto', "
            "HOST:PORT or ray://HOST:10001 joins a running one (put --ray after the inputs, or write "
            "--ray=ADDRESS); docs/scaling.md")
REFINE_EYES_HELP = ("keep the landmark network's own lids: skip the eye refiner, the small second network that "
                    "places face88's lids again on a patch of each eye so that shut eyes close (a 640×480 photo of one "
                    "face takes 1.12× as long with it: benchmarks/results/speed_against_2d8de45.md)")
ALLOW_TRUNCATED_HELP = ("read a JPEG file cut short (its last bytes missing) as far as its data goes, the rest grey, "
                        "with a notice (predict's JSON: \"truncated\": true) instead of refusing it; other broken "
                        "files are still refused")
THREADS_HELP = "CPU threads of the detector and the landmark network (1 stays fast when other programs load the CPU)"
PREDICT_THREADS_HELP = THREADS_HELP[:-1] + "; use --workers to use more cores)"  # only predict has --workers


class UsageError(Exception):
    """Bad arguments: exit code 2."""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, except where there is none to show (None, a flag's False)
    or the help already says it."""

    def _get_help_string(self, action):
        help = action.help or ""
        if action.default is None or action.default is False or "default" in help:
            return help
        return super()._get_help_string(action)


def _builtin_models() -> list[str]:
    """The built-in model names (facemark.network.BUILTIN_MODELS)."""
    from facemark.network import BUILTIN_MODELS

    return sorted(BUILTIN_MODELS)


def _installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _require_torch(verb: str) -> None:
    """A one-line error, before anything loads, when a command that needs torch runs on the light install."""
    if not _installed("torch"):
        raise ImportError(f"`facemark {verb}` runs on torch, which this install lacks: {install_hint('train')}")


def _check_model(model, option: str = "--model") -> None:
    """A model that is neither a file nor a built-in name is a usage error, found before anything loads."""
    if model is None or Path(model).is_file() or str(model) in _builtin_models():
        return
    if Path(model).is_dir():
        raise UsageError(f"{option} {model}: is a folder, not a weights file")
    raise UsageError(f"{option} {model}: no such weights file, and not a built-in model "
                     f"({', '.join(_builtin_models())})")


def _eval_folder(model) -> Path:
    """Where `eval` writes without --out: NAME_eval/ beside a weights file (runs/x/best.pt -> runs/x/best_eval/),
    or in the current folder for a built-in model (face88_eval/)."""
    path = Path(model or "face88")
    if path.is_file():
        return path.with_name(f"{path.stem}_eval")
    return Path(f"{path.name}_eval")


def _check_out_folder(out: str, why: str) -> None:
    """An --out folder that is a file, or lies under one (`notes.txt/sub`), is one usage error (exit 2)."""
    path = Path(out)
    for above in [path, *path.parents]:
        if above.is_dir():
            return
        if above.exists():
            where = "is a file" if above == path else f"{above} is a file"
            raise UsageError(f"--out {out}: {where}; {why}")


def _shard_arg(args) -> tuple[int, int] | None:
    from facemark.cli.sharding import parse_shard

    try:
        return None if args.shard is None else parse_shard(args.shard)
    except ValueError as e:
        raise UsageError(f"--shard: {e}") from None


def _ray_address(args) -> str:
    """--ray's address ("local": a cluster started for this run); an existing path there is a misplaced input."""
    if args.ray != "local" and os.path.exists(args.ray):
        raise UsageError(f"--ray {args.ray}: is a file or folder, not a cluster address; put --ray after the "
                         f"inputs, or write --ray=ADDRESS")
    return args.ray


def _layout(args):
    """The Scheme of --layout (a layout file or a built-in name), registered by its name; None without it."""
    if getattr(args, "layout", None) is None:
        return None
    from facemark.layouts import load_layout

    return load_layout(args.layout)


def _cmd_label(args) -> int:
    from facemark.labels.labelling import label_folder

    shard = _shard_arg(args)
    check_writable_file(args.out, in_place=True)  # before the teacher loads
    start = time.perf_counter()
    if args.ray is not None:
        if args.layout is not None:
            raise UsageError("--layout does not combine with --ray yet; label a layout of your own without --ray "
                             "(--workers N, or --shard I/N on several machines)")
        address = _ray_address(args)
        from facemark.ray import label_on_ray  # one line naming the `ray` extra when Ray is missing

        s = label_on_ray(args.images, args.out, address=address, teacher=args.teacher, workers=args.workers,
                         progress=not args.quiet, shard=shard)
    else:
        s = label_folder(args.images, args.out, teacher=args.teacher, workers=args.workers or os.cpu_count() or 1,
                         progress=not args.quiet, shard=shard, layout=_layout(args))
    took = time.perf_counter() - start
    print(f"labelled {s.labelled}, no face {s.no_face}, unreadable {s.unreadable}, "
          f"already in {args.out}: {s.skipped_existing}"
          + (f", shard {args.shard}" if shard else "") + f" ({took:.1f} s) -> {args.out}")
    return EXIT_OK


def _cmd_clean(args) -> int:
    from facemark.labels.cleaning import clean_label_file

    for output in (args.out, args.report):
        if output is not None:
            check_writable_file(output)
    _layout(args)  # a layout of your own: the label file names it
    report = clean_label_file(args.labels, args.out, report_path=args.report, images_dir=args.images,
                              outlier_threshold=args.outlier_threshold)
    print(report.summary_line())
    return EXIT_OK


def _cmd_convert(args) -> int:
    from facemark.labels.annotations import as_layout, read_labels, read_pts_folder
    from facemark.labels.cvat import is_cvat_file, write_cvat

    source, out = Path(args.labels), Path(args.out)
    if not source.exists():
        raise UsageError(f"{source}: no such label file or .pts folder")
    if out.suffix.lower() not in (".jsonl", ".xml"):
        raise UsageError(f"--out {out}: write .jsonl (facemark's label file) or .xml (CVAT for images 1.1)")
    check_writable_file(out)
    layout = _layout(args)
    records = read_pts_folder(source, layout) if source.is_dir() else read_labels(source)
    if layout is not None:
        records = (as_layout(r, layout) for r in records)
    records = list(records)
    images = args.images or (source if source.is_dir() else source.parent)
    if is_cvat_file(out):
        faces = write_cvat(records, out, images_dir=images)
    else:
        with out.open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(record.to_json() + "\n")
        faces = sum(r.points is not None for r in records)
    print(f"converted {len(records)} images, {faces} faces -> {out}")
    return EXIT_OK


def _cmd_cache(args) -> int:
    from facemark.labels.cache import build_cache

    images = args.images
    if images is None:
        if not Path(args.labels).is_dir():
            raise UsageError("--images is required with a label file")
        images = args.labels
    check_writable_folder(args.out)
    meta = build_cache(args.labels, images, args.out, size=args.size, margin=args.margin,
                       val_fraction=args.val_fraction, progress=not args.quiet, layout=_layout(args))
    print(f"cached {meta['count']} faces ({meta['train_count']} train / {meta['val_count']} val, "
          f"{meta['val_identities']} val identities) -> {args.out}")
    return EXIT_OK


def _cmd_train(args) -> int:
    _require_torch("train")  # cheap (no import): the light install's answer comes first
    from facemark.labels.cache import open_cache

    data = Path(args.data)  # checked before torch loads: a wrong path is answered at once
    if not data.exists():
        raise UsageError(f"--data {data}: no such folder; make a training cache with `facemark cache`")
    if not data.is_dir():
        raise UsageError(f"--data {data}: is a file, not a cache folder; make one with `facemark cache`")
    open_cache(data)  # a folder that is no cache: its one-line error
    if args.init:
        _check_model(args.init, "--init")
    check_writable_folder(args.out)
    import torch

    from facemark.train.training import TrainConfig, train

    if args.threads:
        torch.set_num_threads(args.threads)
    from dataclasses import asdict

    from facemark.train.augment import AUGMENT_PRESETS

    head = args.head or "heatmap"
    model = {"arch": args.arch, "alpha": args.alpha, "rho": args.rho, "shallow": args.shallow, "head": head,
             "head_channels": args.head_channels or DEFAULT_HEAD_CHANNELS[head], "unfreeze": args.unfreeze}
    if args.init:
        from facemark.train.weights import load_weights

        # transfer learning keeps the trained network's backbone; the head may change (a new one is trained)
        init_config = load_weights(args.init).config
        model = {k: getattr(init_config, k) for k in ("arch", "alpha", "rho", "shallow", "head", "head_channels")}
        if args.head and args.head != init_config.head:
            model["head"] = args.head
            model["head_channels"] = args.head_channels or DEFAULT_HEAD_CHANNELS[args.head]
        elif args.head_channels:
            model["head_channels"] = args.head_channels
    from facemark.train.training import (FINETUNE_FREEZE_EPOCHS, FINETUNE_LR, SCRATCH_FREEZE_EPOCHS,
                                         SCRATCH_LR)

    lr = args.lr if args.lr is not None else FINETUNE_LR if args.init else SCRATCH_LR
    freeze = (args.freeze_epochs if args.freeze_epochs is not None
              else FINETUNE_FREEZE_EPOCHS if args.init else SCRATCH_FREEZE_EPOCHS)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=lr, freeze_epochs=freeze, loss=args.loss,
                         patience=args.patience, seed=args.seed, max_train=args.max_train, max_val=args.max_val,
                         model=model,
                         init=args.init, augment=asdict(AUGMENT_PRESETS[args.augment]))
    result = train(args.data, args.out, config, resume=args.resume, progress=not args.quiet)
    print(f"best validation NME {100 * result['best_nme']:.3f}% at epoch {result['best_epoch']}"
          + (" (the --init network as it was: no epoch did better)" if result["best_epoch"] == 0 else "")
          + f" -> {Path(args.out) / 'best.pt'}")
    return EXIT_OK


def _cmd_eval(args) -> int:
    _require_torch("eval")
    _check_model(args.model)  # the arguments first, then the (slow) imports and the model
    data = Path(args.data)
    if not data.exists():
        raise UsageError(f"--data {data}: no such cache folder or label file")
    if data.is_file() and not args.images:
        raise UsageError("evaluating on a label file needs --images (the folder its paths refer to)")
    check_writable_folder(args.out if args.out is not None else _eval_folder(args.model))
    from facemark.train.evaluation import (evaluate_cache, evaluate_labels, format_metrics, write_ced_plot,
                                           write_worst_cases)
    from facemark.train.weights import load_weights

    model = load_weights(args.model)
    if data.is_dir():
        evaluation = evaluate_cache(model, data, split=args.split, progress=not args.quiet)
    else:
        evaluation = evaluate_labels(model, data, args.images, progress=not args.quiet)
    out = Path(args.out) if args.out is not None else _eval_folder(args.model)
    out.mkdir(parents=True, exist_ok=True)
    write_ced_plot({Path(str(args.model or "face88")).stem: evaluation.metrics["per_image_nme"]},
                   out / "ced.png")
    write_worst_cases(evaluation, out / "worst.png")
    (out / "metrics.json").write_text(evaluation.to_json())
    if args.json:
        print(evaluation.to_json())
        print(f"CED plot, worst cases and metrics.json -> {out}/", file=sys.stderr)  # stdout holds the JSON
    else:
        print(format_metrics(evaluation.metrics, evaluation.scheme))
        print(f"CED plot, worst cases and metrics.json -> {out}/")
    for problem in evaluation.skipped:
        print(f"skipped: {problem}", file=sys.stderr)
    return EXIT_FAILED if evaluation.skipped else EXIT_OK


def _cmd_predict(args) -> int:
    from facemark.cli.predict import predict_inputs

    shard = _shard_arg(args)
    if args.draw and not args.out:
        raise UsageError("--draw needs --out DIR")
    if args.resume and (args.json is None or args.json == "-"):
        raise UsageError("--resume needs --json FILE (the file to resume)")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.parquet is not None and args.ray is None:
        raise UsageError("--parquet needs --ray (the plain run writes JSON Lines)")
    if args.parquet is not None and args.resume:
        raise UsageError("--resume appends to the --json file; a --parquet file cannot be appended to")
    if args.ray is not None and args.draw:
        raise UsageError("--draw does not combine with --ray (the drawings would be written on the cluster's "
                         "machines)")
    if args.draw:
        _check_out_folder(args.out, "the drawings need a folder")
    if args.json not in (None, "-") and Path(args.json).is_dir():
        raise UsageError(f"--json {args.json}: is a folder; give the JSON Lines file to write")
    _check_model(args.model)
    # predict_inputs builds the Landmarker once the inputs check out (a bad input is refused at once), also
    # with workers, so a bad --model fails before the worker processes start
    options = _landmarker_options(args, flip=args.flip, min_face=args.min_face, min_trust=args.min_trust,
                                  allow_truncated=args.allow_truncated)
    draw_dir = args.out if args.draw else None
    json_path = args.json
    if json_path is None and not args.draw and args.parquet is None:
        json_path = "-"  # stdout
    if args.ray is not None:
        address = _ray_address(args)
        from facemark.ray import predict_on_ray  # one line naming the `ray` extra when Ray is missing

        summary = predict_on_ray(options, args.inputs, address=address, json_path=json_path,
                                 parquet_path=args.parquet, progress=not args.quiet, shard=shard,
                                 resume=args.resume, workers=args.workers)
    else:
        summary = predict_inputs(options, args.inputs, json_path=json_path, draw_dir=draw_dir,
                                 progress=not args.quiet, shard=shard, resume=args.resume,
                                 workers=args.workers or 1)
    for notice in summary.notices:  # an animated image read on its first frame: not a failure
        print(f"facemark predict: {notice}", file=sys.stderr)
    for problem in summary.failed:
        print(f"facemark predict: {problem}", file=sys.stderr)
    print(f"{summary.images} images, {summary.faces} faces, {len(summary.failed)} failed"
          + (f"; {summary.skipped_existing} already in {args.json}" if args.resume else "")
          + (f"; shard {args.shard}: {summary.other_shards} inputs left to other shards" if shard else "")
          + (f"; drawings in {os.path.join(draw_dir, '')}" if draw_dir else "") + (f"; points in {args.json}" if args.json else "")
          + (f"; records in {args.parquet}" if args.parquet else ""),
          file=sys.stderr)
    return EXIT_FAILED if summary.failed else EXIT_OK


def _landmarker_options(args, **more):
    """The LandmarkerOptions of a verb's flags (--model, --detector, --backend, --threads, --no-refine-eyes and
    `more`), validated once: an option out of range is a usage error naming its flag."""
    from facemark.options import LandmarkerOptions, OptionError

    try:
        return LandmarkerOptions(model=args.model, detector=args.detector, backend=args.backend,
                                 threads=args.threads, refine_eyes=not getattr(args, "no_refine_eyes", False), **more)
    except OptionError as e:
        raise UsageError(e.for_flag()) from None


def _cmd_chips(args) -> int:
    from facemark.geometry.chips import TEMPLATES

    if args.template not in TEMPLATES:  # argparse's choices catch this; a direct call may not
        raise UsageError(f"--template {args.template}: unknown; known: {', '.join(TEMPLATES)}")
    if not 8 <= args.size <= 4096:
        raise UsageError(f"--size must be from 8 to 4096 pixels, got {args.size}")
    if not 0 <= args.margin <= 10:
        raise UsageError(f"--margin must be from 0 to 10, got {args.margin:g}")
    # --min-trust here leaves chips out after the Landmarker's own floor (counted as dropped in the summary)
    min_trust = _landmarker_options(args, min_trust=args.min_trust).min_trust
    out = Path(args.out)
    _check_out_folder(args.out, "the chips need a folder")
    _check_model(args.model)
    check_writable_folder(out)  # before the model loads: one error, not one per image
    from facemark.cli.chips import write_chips

    summary = write_chips(args.inputs, out, _landmarker_options(args, allow_truncated=args.allow_truncated),
                          size=args.size, template=args.template, margin=args.margin, min_trust=min_trust,
                          progress=not args.quiet)
    for notice in summary.notices:  # a JPEG file cut short, read as far as it goes: not a failure
        print(f"facemark chips: {notice}", file=sys.stderr)
    for problem in summary.failed:
        print(f"facemark chips: {problem}", file=sys.stderr)
    print(summary.summary_line(), file=sys.stderr)
    return EXIT_FAILED if summary.failed else EXIT_OK


def _cmd_export(args) -> int:
    _require_torch("export")
    target = Path(args.onnx)
    if target.is_dir() or args.onnx.endswith(("/", os.sep)):
        raise UsageError(f"--onnx {args.onnx}: is a folder; give the file to write, e.g. "
                         f"{target / ((args.model and Path(args.model).stem or 'face88') + '.onnx')}")
    if target.suffix.lower() != ".onnx":
        raise UsageError(f"--onnx {args.onnx}: the file name must end in .onnx (how facemark tells an ONNX model)")
    _check_model(args.model)
    check_writable_file(target)
    import torch

    from facemark.network import LandmarkNetwork
    from facemark.train.export import export_onnx, max_difference_px
    from facemark.train.weights import load_weights

    start = time.perf_counter()
    network = load_weights(args.model)
    path = export_onnx(network, args.onnx, opset=args.opset, compact=not args.fp32)
    size = network.config.input_size
    x = torch.rand(4, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    diff = max_difference_px(network, LandmarkNetwork(path, threads=1), x)
    print(f"exported {args.model or 'face88'} ({network.scheme.name}, {size}×{size} input, margin "
          f"{network.config.margin}) -> {path} ({path.stat().st_size / 1e6:.1f} MB, "
          f"{time.perf_counter() - start:.1f} s); onnxruntime matches torch to {diff:.1e} crop px")
    return EXIT_OK


def _cmd_video(args) -> int:
    from facemark.cli.video import check_video_input, check_video_outputs, run_video

    if args.detect_every < 1:
        raise UsageError(f"--detect-every must be at least 1, got {args.detect_every}")
    out = args.out
    if out is None and args.json is None and args.plot is None:
        out = f"{Path(args.input).stem}_landmarks.mp4"
    _check_model(args.model)
    if args.plot and not _installed("matplotlib"):
        raise ImportError(f"--plot draws with matplotlib, which this install lacks: {install_hint('plot')}")
    check_video_outputs(args.input, out, args.json, args.plot)  # the arguments and the input first, then the model
    check_video_input(args.input)
    from facemark.landmarker import Landmarker

    landmarker = Landmarker.from_options(_landmarker_options(args, min_trust=args.min_trust))
    summary = run_video(landmarker, args.input, out, json_path=args.json, smooth=not args.no_smooth,
                        detect_every=args.detect_every, progress=not args.quiet, plot_path=args.plot)
    if args.quiet:  # run_video prints its notices only along with the progress bar
        for notice in summary.notices:
            print(f"facemark video: {notice}", file=sys.stderr)
    for problem in summary.failed:  # frames that could not be decoded: the rest is written, exit 1
        print(f"facemark video: {problem}", file=sys.stderr)
    print(summary.summary_line() + (f"; openness plot -> {args.plot}" if args.plot else ""), file=sys.stderr)
    return EXIT_FAILED if summary.failed else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from facemark import __version__

    parser = argparse.ArgumentParser(prog="facemark", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"facemark {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = sub.add_parser("label", help="label an image folder with a teacher (JSON Lines: face88, or ibug68 for dlib)")
    p.add_argument("images", help="folder of images (searched recursively)")
    p.add_argument("--out", required=True, help="label file to write; an existing one is resumed")
    p.add_argument("--teacher", default="mediapipe", choices=["mediapipe", "dlib", "ensemble"],
                   help="mediapipe: Face Mesh, face88; dlib: dlib's 68-point predictor, ibug68; ensemble: both, "
                        "calibrated on human labels, face88 (dlib and ensemble need the 'teacher' extra)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: one per core; with --ray, one actor per CPU of the cluster)")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS", help=RAY_HELP)
    p.add_argument("--shard", metavar="I/N", default=None,
                   help="label only shard I of N (0 <= I < N; by a hash of each image's relative path)")
    p.add_argument("--layout", default=None, metavar="FILE_OR_NAME",
                   help="write this layout (a layout file, docs/layouts.md) through its from_mediapipe table (dlib: "
                        "from_ibug68) instead of the teacher's own")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_cmd_label)

    p = sub.add_parser("clean", help="remove invalid labels (error analysis) and report why")
    p.add_argument("labels", help="label file (JSON Lines)")
    p.add_argument("--out", required=True, help="clean label file to write")
    p.add_argument("--report", help="Markdown report to write (a contact-sheet PNG is written beside it)")
    p.add_argument("--images", help="images folder, for the contact sheet (default: the label file's folder)")
    p.add_argument("--layout", default=None, metavar="FILE_OR_NAME",
                   help="the layout file of labels in a layout of your own (docs/layouts.md); the rules that need "
                        "regions it lacks are skipped and named")
    p.add_argument("--outlier-threshold", type=float, default=None,
                   help="robust z-score above which a shape is a statistical outlier (default 6)")
    p.set_defaults(run=_cmd_clean)

    p = sub.add_parser("convert", help="label file <-> CVAT for images 1.1 XML (correct labels in CVAT), .pts "
                                       "folder -> either, one layout -> another")
    p.add_argument("labels", help="label file (JSON Lines or CVAT .xml), or a folder of images with .pts files")
    p.add_argument("--out", required=True, help="file to write: .jsonl (facemark) or .xml (CVAT for images 1.1)")
    p.add_argument("--layout", default=None, metavar="FILE_OR_NAME",
                   help="write this layout (docs/layouts.md): labels of another layout go through its from_* "
                        "table; also the file of a layout of your own that the labels name")
    p.add_argument("--images", help="images folder, for image sizes in a CVAT file (default: the labels' folder)")
    p.set_defaults(run=_cmd_convert)

    p = sub.add_parser("cache", help="turn images + clean labels into a training cache of crops")
    p.add_argument("labels", help="clean label file (JSON Lines), or a folder of images with .pts files")
    p.add_argument("--images", help="images folder the label file refers to (default: the .pts folder)")
    p.add_argument("--out", required=True, help="cache folder to write")
    p.add_argument("--size", type=int, default=None, help="crop size S (default 160)")
    p.add_argument("--margin", type=float, default=None, help="square side / face box side (default 1.25)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of identities held out")
    p.add_argument("--layout", default=None, metavar="FILE_OR_NAME",
                   help="the cache's layout (docs/layouts.md): .pts files of its point count, or labels it says how "
                        "to convert (from_ibug68: every 68-point .pts set); its margin frames the crops")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_cmd_cache)

    p = sub.add_parser("train", help="train a landmark network on a cache")
    p.add_argument("--data", required=True, help="cache folder made by `facemark cache`")
    p.add_argument("--out", required=True, help="run folder (log.csv, curves.png, last.pt, best.pt)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--arch", default="mobilenet",
                   help="network architecture (facemark.train.model.ARCHITECTURES): mobilenet, or dlib_resnet (the "
                        "transfer baseline: dlib's face ResNet frozen, 150-px input, 1024-unit head)")
    p.add_argument("--alpha", type=float, default=0.5, help="width multiplier")
    p.add_argument("--rho", type=float, default=0.8, help="resolution multiplier (input 160*rho)")
    p.add_argument("--shallow", action="store_true", help="drop the five 512-channel blocks")
    p.add_argument("--unfreeze", type=int, default=0,
                   help="--arch dlib_resnet: train its last N residual stages too (default 0: all frozen)")
    p.add_argument("--head", default=None, choices=["heatmap", "flatten", "gap"],
                   help="heatmap: per-point heatmaps at stride 8 decoded by soft-argmax (default); flatten: "
                        "direct regression from the stride-32 map; gap: from its average (default with --init: "
                        "the init network's head)")
    p.add_argument("--head-channels", type=int, default=None,
                   help="head width (default 64 for heatmap, 48 for flatten; with --init: the init network's)")
    p.add_argument("--epochs", type=int, default=60, help="most epochs to train (early stopping may end sooner)")
    p.add_argument("--batch-size", type=int, default=64,
                   help="faces per step (the global batch, split between torchrun processes)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default: 3e-3 from scratch; with --init, fine-tuning, 1e-3: "
                        "benchmarks/results/finetune_defaults.md)")
    p.add_argument("--freeze-epochs", type=int, default=None,
                   help="keep the backbone frozen for the first N epochs (default: 0 from scratch; with --init, "
                        "0: benchmarks/results/finetune_defaults.md)")
    p.add_argument("--loss", default="wing", choices=["wing", "l1", "mse", "smooth_l1"],
                   help="loss on the points in crop pixels")
    p.add_argument("--patience", type=int, default=15, help="early stopping: epochs without improvement")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights, shuffling and augmentation")
    p.add_argument("--max-train", type=int, default=None, help="use only the first N training faces")
    p.add_argument("--max-val", type=int, default=None,
                   help="validate on the first N validation faces only (the cache's order: label-file order)")
    p.add_argument("--init", default=None, metavar="WEIGHTS",
                   help="start from a trained network (weights file or built-in name): its architecture is "
                        "kept. Same layout: fine-tuning (use it for a few hundred faces of your own; epoch 0, the "
                        "network as it starts, is scored and kept as best.pt until an epoch beats it). Another "
                        "layout (docs/layouts.md): each new point's output starts from the trained points where it "
                        "lies (use face88 for any face layout; train without --init only for many thousands of "
                        "faces). A joint layout such as face88+ibug68 started from face88 seeds every heatmap")
    p.add_argument("--augment", default="default", choices=["default", "heavy", "none"],
                   help="augmentation preset (heavy: for small human-labelled sets)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_cmd_train)

    p = sub.add_parser("eval", help="measure a landmark network: MSE/MAE, NME, failure rate, AUC, CED")
    p.add_argument("--model", default=None, help="weights file or built-in name (default: face88)")
    p.add_argument("--data", required=True, help="cache folder, or a label file (then also --images)")
    p.add_argument("--images", help="images folder for a label file")
    p.add_argument("--split", default="val", choices=["val", "train", "all"], help="cache split")
    p.add_argument("--out", default=None,
                   help="folder for ced.png, worst.png, metrics.json (default: NAME_eval/ beside the weights "
                        "file, e.g. runs/x/best_eval/; for a built-in model face88_eval/ in the current folder)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_cmd_eval)

    p = sub.add_parser("predict", help="landmarks for images, folders (recursive) or globs")
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns (with --ray also list files, "
                                             "*.txt of paths or URLs, and URIs such as s3://bucket/photos/)")
    p.add_argument("--model", default=None, help="weights file, .onnx file or built-in name (default: face88)")
    p.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"], help=BACKEND_HELP)
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS), help=DETECTOR_HELP)
    p.add_argument("--min-face", type=float, default=None, metavar="PIXELS",
                   help="smallest face to find, its side in image pixels; smaller reaches further and is slower "
                        "(default: 40 for mtcnn, which then sees every pixel; blazeface: faces from ~1/10 of the "
                        "longer side, and above 1024 px a crowd's faces down to 1/30 of it or 80 px)")
    p.add_argument("--json", help="JSON Lines file, one line per image ('-' for stdout, the default "
                                  "when nothing else is asked for)")
    p.add_argument("--draw", action="store_true",
                   help="write each image with its points drawn into --out, as DIR/SUBFOLDERS/NAME_landmarks.png "
                        "(the inputs' paths below the folder they share)")
    p.add_argument("--out", help="folder for drawings")
    p.add_argument("--threads", type=int, default=1, help=PREDICT_THREADS_HELP)
    p.add_argument("--shard", metavar="I/N", default=None,
                   help="only the inputs in shard I of N (0 <= I < N; by a hash of each image's path as listed)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes that decode, detect and predict in parallel (one thread each; default "
                        "1; with --ray, actors, default one per CPU of the cluster)")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS", help=RAY_HELP)
    p.add_argument("--parquet", metavar="FILE", default=None,
                   help="with --ray: also (or, without --json, only) write the records as a Parquet file, a path "
                        "or a URI (docs/scaling.md)")
    p.add_argument("--flip", action="store_true",
                   help="also average the first pass with its mirror image (the final pass always is; more network "
                        "time, little gain)")
    p.add_argument("--resume", action="store_true",
                   help="append to --json FILE, skipping the images already in it (after a killed run)")
    p.add_argument("--min-trust", type=float, default=None, metavar="T",
                   help="leave out faces whose trust score (0-1, in the JSON as 'trust') is below T (default "
                        "0.15: drops false faces and faces whose points are lost, benchmarks/results/false_faces.md; "
                        "0 keeps every face; 0.5 keeps about 93%% of real AFW faces, benchmarks/results/trust.md)")
    p.add_argument("--allow-truncated", action="store_true", help=ALLOW_TRUNCATED_HELP)
    p.add_argument("--no-refine-eyes", action="store_true", help=REFINE_EYES_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_cmd_predict)

    p = sub.add_parser("chips", help="aligned face chips (ArcFace 112×112 by default) for images, folders or globs")
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--out", required=True, help="folder for the chips (NAME_faceK.png) and chips.jsonl")
    p.add_argument("--size", type=int, default=112, help="chip side in pixels")
    p.add_argument("--template", default="arcface", choices=["arcface", "square"],
                   help="arcface: insightface's ArcFace 5-point template; square: the same shrunk by "
                        "1/(1+margin), the whole head with room around it")
    p.add_argument("--margin", type=float, default=0.25, help="--template square: room around the face")
    p.add_argument("--min-trust", type=float, default=None, metavar="T",
                   help="no chip for faces whose trust score (0-1) is below T (default: the Landmarker's, 0.15)")
    p.add_argument("--model", default=None, help="weights file, .onnx file or built-in name (default: face88)")
    p.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"], help=BACKEND_HELP)
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS), help=DETECTOR_HELP)
    p.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    p.add_argument("--allow-truncated", action="store_true", help=ALLOW_TRUNCATED_HELP)
    p.add_argument("--no-refine-eyes", action="store_true", help=REFINE_EYES_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_cmd_chips)

    p = sub.add_parser("export", help="write a landmark network as an ONNX file (its config in the metadata)")
    p.add_argument("--onnx", required=True, metavar="FILE",
                   help=".onnx file to write (its contract: docs/onnx.md)")
    p.add_argument("--model", default=None, help="weights file or built-in name (default: face88)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version")
    p.add_argument("--fp32", action="store_true",
                   help="store the weights in float32 (default: int8 or float16, folded back to float32 when "
                        "the file loads: a quarter to half the size, the same arithmetic)")
    p.set_defaults(run=_cmd_export)

    p = sub.add_parser("video", help="landmarks through a video: a drawn copy (mp4) and/or JSON Lines, per frame")
    p.add_argument("input", help="video file (any format OpenCV's FFmpeg reads), or an animated GIF, WebP or PNG")
    p.add_argument("--out", help="video to write with the points drawn (.mp4; default when --json is not "
                                 "given either: INPUT-NAME_landmarks.mp4 in the current folder)")
    p.add_argument("--json", help="JSON Lines file, one line per frame ('-' for stdout)")
    p.add_argument("--model", default=None, help="weights file, .onnx file or built-in name (default: face88)")
    p.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"], help=BACKEND_HELP)
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS), help=DETECTOR_HELP)
    p.add_argument("--detect-every", type=int, default=30,
                   help="run the face detector at least every N frames (a new face waits at most N frames)")
    p.add_argument("--no-smooth", action="store_true", help="raw points, no One-Euro smoothing")
    p.add_argument("--no-refine-eyes", action="store_true", help=REFINE_EYES_HELP)
    p.add_argument("--min-trust", type=float, default=None, metavar="T",
                   help="leave out faces whose trust score (0-1, in the JSON as 'trust') is below T: not in the "
                        "JSON, not drawn; a track under it is checked by the detector again (default 0.15; 0 "
                        "keeps every face)")
    p.add_argument("--plot", metavar="PNG", default=None,
                   help="write a PNG of each face's eye and mouth openness over time, blinks shaded (the JSON "
                        "Lines carry the same values: eye_openness, mouth_openness, pose)")
    p.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_cmd_video)
    add_web_parser(sub)  # `facemark web`: facemark.web.cli
    for verb_parser in sub.choices.values():  # every verb's help shows its options' defaults
        verb_parser.formatter_class = _HelpFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed the usage line
        return EXIT_USAGE if e.code else EXIT_OK
    try:
        return args.run(args)
    except UsageError as e:
        print(f"facemark {args.verb}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (ImageError, AnnotationError, ValueError, RuntimeError, OSError, ImportError) as e:
        print(f"facemark {args.verb}: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as e:  # its message, if any, says what was kept
        print(f"facemark {args.verb}: interrupted" + (f"; {e}" if str(e) else ""), file=sys.stderr)
        return 130
