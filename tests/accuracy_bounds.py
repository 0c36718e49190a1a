"""The shipped models' measured figures that tests hold, and their bounds (see tests/scenarios/test_accuracy_floor.py
for how to re-measure). A module of its own so that any test file imports it, run alone or in the whole suite."""

# measured 2026-12-03 (session 6) with face88.onnx / ibug68.onnx (session 6's models: face88 from the joint
# face88+ibug68 run runs/joint, ibug68 from it fine-tuned on human labels, runs/ibug68_ft), the runtime's
# onnxruntime back end and issue 21's passes. face88 now learns dlib's placement (the adult-refitted ensemble),
# so it sits further from MediaPipe, its teacher of session 5 (0.0280 then), and closer to ibug68 (0.0173 then).
MEASURED = {
    "face88_vs_teacher": 0.0406,  # mean NME, 88 points, 5 samples, against MediaPipe's labels
    "ibug68_vs_dlib68": 0.0168,  # mean NME, 68 points, 5 samples, against dlib's points
    "ibug68_vs_face88_anchors34": 0.0038,  # the two models' gap on their 34 shared points, sample image
    "face88_heldout_anchors34": 0.0307,  # human labels, 34 shared points, 148 held-out AFW + HELEN faces
    "ibug68_heldout": 0.0379,  # human labels, 68 points, the same faces
    # consistency of face88 in pixels, checked in other files (tests/measure_accuracy.py does not print these;
    # their tests' failure messages do, with MARGIN set to 0):
    # test_robustness.py: gray/palette/CMYK/EXIF copies vs the RGB image (session 5: a copy may now take one
    # landmark batch where the RGB image takes two, or the other way round: gray 0.46 px mean)
    "face88_decode_variants_mean_px": 0.25,
    "face88_decode_variants_max_px": 0.75,
    "face88_tracking_drift_px": 0.154,  # test_video.py: the tracked face's mean point vs the true motion
}
# a few pixels of decoding or cropping noise are not a regression: twice the measured value there
MARGIN = {name: 2.0 if name.endswith("_px") else 1.15 for name in MEASURED}
BOUND = {name: value * MARGIN[name] for name, value in MEASURED.items()}
