"""The teacher ensemble: fitting moves points toward people, the warp keeps the layout, the teachers run."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from facemark.labels.annotations import read_labels, read_pts
from facemark.cli import main
from facemark.labels.ensemble import (SHARED, EnsembleError, EnsembleParams, FaceFrame, combine, ensemble_face88,
                               fit_box_map, fit_ensemble, map_box, warp_points)
from facemark.layouts import FACE88_ANCHORS, IBUG68_ANCHORS

ASTRONAUT = Path(__file__).resolve().parents[3] / "examples" / "astronaut.png"


def _template34(rng) -> np.ndarray:
    """A plausible face's 34 shared points (pixels): eye corners level, brows above, nose, mouth, chin below."""
    from facemark.layouts import IBUG68_TO_FACE88

    layout = {  # iBUG index -> (x, y) in eye distances from the face centre
        8: (0, 1.1), 17: (-0.75, -0.55), 21: (-0.15, -0.5), 22: (0.15, -0.5), 26: (0.75, -0.55),
        27: (0, -0.25), 30: (0, 0.2), 31: (-0.15, 0.3), 32: (-0.08, 0.32), 33: (0, 0.34), 34: (0.08, 0.32),
        35: (0.15, 0.3), 36: (-0.5, -0.25), 39: (-0.18, -0.25), 42: (0.18, -0.25), 45: (0.5, -0.25),
        48: (-0.3, 0.6), 49: (-0.2, 0.55), 50: (-0.1, 0.52), 51: (0, 0.53), 52: (0.1, 0.52), 53: (0.2, 0.55),
        54: (0.3, 0.6), 55: (0.2, 0.68), 56: (0.1, 0.71), 57: (0, 0.72), 58: (-0.1, 0.71), 59: (-0.2, 0.68),
        61: (-0.1, 0.59), 62: (0, 0.6), 63: (0.1, 0.59), 65: (0.1, 0.63), 66: (0, 0.64), 67: (-0.1, 0.63),
    }
    assert sorted(layout) == sorted(IBUG68_TO_FACE88)
    base = np.array([layout[i] for i in IBUG68_ANCHORS], np.float64)
    return base + rng.normal(0, 0.02, base.shape)


def _synthetic_faces(n: int, seed: int):
    """(dlib34, mediapipe34, truth34) of n faces at random positions, sizes and rolls: each teacher has its own
    fixed bias per point (in the face's frame) plus noise, dlib less noisy than MediaPipe."""
    rng = np.random.default_rng(seed)
    bias_d = rng.normal(0, 0.04, (SHARED, 2))
    bias_m = rng.normal(0, 0.06, (SHARED, 2))
    faces = []
    for _ in range(n):
        shape = _template34(rng)
        angle, size, centre = rng.uniform(-0.4, 0.4), rng.uniform(40, 200), rng.uniform(100, 400, 2)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        to_px = lambda q: q @ rot.T * size + centre  # noqa: E731
        truth = to_px(shape)
        d = to_px(shape + bias_d + rng.normal(0, 0.02, shape.shape))
        m = to_px(shape + bias_m + rng.normal(0, 0.04, shape.shape))
        faces.append((d, m, truth))
    return tuple(np.stack(a) for a in zip(*faces))


def _nme(pred, truth):
    left, right = list(IBUG68_ANCHORS).index(36), list(IBUG68_ANCHORS).index(45)
    return float(np.mean([np.linalg.norm(p - t, axis=1).mean() / np.linalg.norm(t[left] - t[right])
                          for p, t in zip(pred, truth)]))


@pytest.mark.parametrize("mode", ["per_point+offsets", "robust"])
def test_fitted_ensemble_moves_points_toward_the_labels(mode):
    d, m, t = _synthetic_faces(100, seed=1)  # one population: the same teachers, the same biases
    params = fit_ensemble(d[:60], m[:60], t[:60], mode=mode)  # the tiny "human-labelled" fixture
    dt, mt, tt = d[60:], m[60:], t[60:]  # faces the fit never saw
    ens = np.stack([combine(params, a, b) for a, b in zip(dt, mt)])
    e_ens, e_d, e_m = _nme(ens, tt), _nme(dt, tt), _nme(mt, tt)
    assert e_ens < 0.8 * min(e_d, e_m), (e_ens, e_d, e_m)
    # each point moved toward the label on average, not just the mean over points
    per_point_before = np.linalg.norm(dt - tt, axis=-1).mean(axis=0)
    per_point_after = np.linalg.norm(ens - tt, axis=-1).mean(axis=0)
    assert (per_point_after < per_point_before).mean() > 0.9
    assert ((params.weights >= 0) & (params.weights <= 1)).all()
    assert params.weights.mean() > 0.5  # the less noisy teacher (dlib here) gets the larger weight


def test_offsets_alone_remove_a_known_bias():
    """One teacher with a constant offset in the face frame and no noise: the fitted offset undoes it exactly."""
    _, m, t = _synthetic_faces(30, seed=3)
    rng = np.random.default_rng(4)
    frames = [FaceFrame.of(x) for x in t]
    shift = rng.normal(0, 0.05, (SHARED, 2))
    shifted = np.stack([f.to_image(f.to_frame(x) + shift) for f, x in zip(frames, t)])
    params = fit_ensemble(shifted, m, t, mode="per_point+offsets")
    recovered = np.stack([combine(params, x, None) for x in shifted])
    assert _nme(shifted, t) > 0.02
    assert _nme(recovered, t) < 0.01  # the frame of a shifted shape differs a little from the truth's


def test_gate_leaves_out_a_teacher_that_lost_the_face():
    d, m, t = _synthetic_faces(40, seed=5)
    lost = np.arange(40) % 4 == 0
    d[lost] = d[lost][:, ::-1]  # a quarter of dlib's shapes scrambled: it found something else
    params = fit_ensemble(d, m, t, mode="robust", max_disagreement="auto")
    assert np.isfinite(params.max_disagreement)
    ens = np.stack([combine(params, a, b) for a, b in zip(d, m)])
    assert _nme(ens[lost], t[lost]) < 1.2 * _nme(m[lost], t[lost])  # about MediaPipe's own error there
    assert _nme(ens[~lost], t[~lost]) < _nme(m[~lost], t[~lost])


def test_warp_keeps_the_34_points_exact_and_is_the_identity_when_nothing_moves(astronaut_labels):
    _, points88 = astronaut_labels
    rng = np.random.default_rng(0)
    source = points88[FACE88_ANCHORS]
    assert np.array_equal(warp_points(source, source, points88), points88)  # nothing moves: identity
    target = source + rng.normal(0, 1.5, source.shape)
    moved = warp_points(source, target, points88)
    np.testing.assert_allclose(moved[FACE88_ANCHORS], target, atol=1e-6)  # exact interpolation
    # the other points move smoothly: about as far as their neighbours, never far beyond the largest move
    others = np.setdiff1d(np.arange(88), FACE88_ANCHORS)
    assert np.linalg.norm(moved[others] - points88[others], axis=1).max() < 3 * np.linalg.norm(
        target - source, axis=1).max()
    # a similarity of the anchors carries every point by the same similarity (the spline's affine part)
    rot = np.array([[np.cos(0.2), -np.sin(0.2)], [np.sin(0.2), np.cos(0.2)]]) * 1.1
    np.testing.assert_allclose(warp_points(source, source @ rot.T + 5, points88), points88 @ rot.T + 5, atol=1e-6)


def test_ensemble_face88_keeps_the_layout(astronaut_labels):
    _, points88 = astronaut_labels
    params = EnsembleParams.identity(weight=1.0)
    params.warp_regularisation = 0.1
    dlib68 = np.full((68, 2), np.nan)
    dlib68[IBUG68_ANCHORS] = points88[FACE88_ANCHORS] + np.array([2.0, -1.0])  # dlib: the same face, shifted
    out = ensemble_face88(params, dlib68, points88)
    np.testing.assert_allclose(out[FACE88_ANCHORS], dlib68[IBUG68_ANCHORS], atol=1e-9)  # exact, regularised or not
    np.testing.assert_allclose(out, points88 + [2.0, -1.0], atol=1e-6)  # a pure shift carries everything
    # with MediaPipe missing: the 34 points, NaN elsewhere
    partial = ensemble_face88(params, dlib68, None)
    assert np.isfinite(partial).all(axis=1).sum() == SHARED
    with pytest.raises(EnsembleError, match="no teacher points"):
        ensemble_face88(params, None, None)


def test_box_map_round_trip():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 100, (20, 2))
    boxes = np.hstack([a, a + rng.uniform(30, 60, (20, 2))])
    mapping = (0.05, -0.1, 1.2, 0.9)
    mapped = np.array([map_box(b, mapping) for b in boxes])
    np.testing.assert_allclose(fit_box_map(boxes, mapped), mapping, atol=1e-9)


def test_params_file_round_trip_and_errors(tmp_path):
    params = EnsembleParams.load()  # the shipped file
    assert params.weights.shape == (SHARED,) and {"mediapipe", "mtcnn"} <= set(params.box_to_dlib_rect)
    assert "infants" in params.notes["fitted_on"]
    params.save(tmp_path / "p.json")
    again = EnsembleParams.load(tmp_path / "p.json")
    np.testing.assert_allclose(again.offsets_dlib, params.offsets_dlib, atol=1e-5)
    assert again.max_disagreement == params.max_disagreement
    with pytest.raises(EnsembleError, match="cannot read ensemble parameters"):
        EnsembleParams.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(EnsembleError, match="invalid JSON"):
        EnsembleParams.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something"}))
    with pytest.raises(EnsembleError, match="not a teacher-ensemble parameter file"):
        EnsembleParams.load(tmp_path / "other.json")
    d = json.loads((tmp_path / "p.json").read_text())
    d["weights_dlib"] = d["weights_dlib"][:5]
    (tmp_path / "short.json").write_text(json.dumps(d))
    with pytest.raises(EnsembleError, match="34 weights"):
        EnsembleParams.load(tmp_path / "short.json")


# --- the teachers themselves (need dlib and MediaPipe) ----------------------------------------------------

@pytest.fixture(scope="module")
def ensemble_teacher():
    pytest.importorskip("dlib")
    pytest.importorskip("mediapipe")
    from facemark.labels.teachers import EnsembleTeacher

    teacher = EnsembleTeacher()
    yield teacher
    teacher.close()


def test_ensemble_teacher_on_a_real_face(ensemble_teacher, astronaut_labels):
    rgb, mp88 = astronaut_labels
    obs = ensemble_teacher.observe(rgb)
    assert obs.dlib_rect_from == "dlib" and obs.dlib68.shape == (68, 2)
    result = ensemble_teacher.label(rgb)
    assert result.source == "ensemble(dlib-20.0.1+mediapipe-0.10.21)"
    assert result.points.shape == (88, 2) and np.isfinite(result.points).all()
    eye = np.linalg.norm(mp88[21] - mp88[33])
    # close to both teachers (a calibration, not a new face), and between them more than beside them
    assert np.linalg.norm(result.points - mp88, axis=1).mean() < 0.1 * eye
    assert np.linalg.norm(result.points[FACE88_ANCHORS] - obs.dlib68[IBUG68_ANCHORS], axis=1).mean() < 0.1 * eye
    # dlib's rectangle when its detector misses, mapped from MediaPipe's points: dlib lands on the same face
    rect = ensemble_teacher.dlib.rect_from("mediapipe", (mp88[:, 0].min(), mp88[:, 1].min(),
                                                         mp88[:, 0].max(), mp88[:, 1].max()))
    on_mapped = ensemble_teacher.dlib.shape(rgb, rect)
    assert np.linalg.norm(on_mapped - obs.dlib68, axis=1).mean() < 0.05 * eye


def test_ensemble_without_mediapipe_is_partial_and_says_so(ensemble_teacher, astronaut_labels):
    from facemark.labels.teachers import Observation

    rgb, _ = astronaut_labels
    obs = ensemble_teacher.observe(rgb)
    result = ensemble_teacher.combine(Observation(None, obs.dlib68, obs.dlib_rect, "dlib"))
    assert result.source == "ensemble(dlib-20.0.1)"
    assert np.isfinite(result.points).all(axis=1).sum() == SHARED and result.box is not None
    # dlib far off MediaPipe's face (lost): left out, and the record says so
    lost = Observation(obs.mediapipe88, obs.dlib68 + 80.0, obs.dlib_rect, "mediapipe")
    result = ensemble_teacher.combine(lost)
    assert result.source == "ensemble(mediapipe-0.10.21)"


def test_cli_label_with_each_teacher(tmp_path, capsys):
    pytest.importorskip("dlib")
    pytest.importorskip("mediapipe")
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copyfile(ASTRONAUT, folder / "astronaut.png")
    (folder / "bad.jpg").write_text("not an image\n")
    for teacher, scheme, points in (("dlib", "ibug68", 68), ("ensemble", "face88", 88)):
        out = tmp_path / f"{teacher}.jsonl"
        assert main(["label", str(folder), "--out", str(out), "--teacher", teacher, "--workers", "1", "--quiet"]) == 0
        assert capsys.readouterr().out.startswith("labelled 1, no face 0, unreadable 1")
        records = {r.image: r for r in read_labels(out)}  # readable by the ordinary reader
        face = records["astronaut.png"]
        assert face.scheme == scheme and face.points.shape == (points, 2) and face.error is None
        assert face.source.startswith("dlib-" if teacher == "dlib" else "ensemble(dlib-")
        assert records["bad.jpg"].points is None and "not an image" in records["bad.jpg"].error
    assert main(["label", str(folder), "--out", str(tmp_path / "x.jsonl"), "--teacher", "nobody"]) == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.shared
def test_ensemble_beats_both_teachers_on_infant_faces(shared_data, ensemble_teacher):
    """Ten infant faces (in the fitting set, so a smoke check; the held-out numbers are in
    benchmarks/results/teacher_ensemble.md): where both teachers found the labelled face, the ensemble's 34
    points are closer to the person's than either teacher's, on average."""
    from facemark.images import load_image

    errors = []
    for pts in sorted((shared_data / "infants").glob("*.pts"))[:40:4]:
        truth = read_pts(pts)
        obs = ensemble_teacher.observe(load_image(pts.with_suffix(".jpg")))
        if obs.mediapipe88 is None or obs.dlib68 is None or obs.dlib_rect_from != "dlib":
            continue
        ens = ensemble_teacher.combine(obs).points
        iod = np.linalg.norm(truth[36] - truth[45])
        t34 = truth[IBUG68_ANCHORS]
        errors.append([np.linalg.norm(p - t34, axis=1).mean() / iod for p in
                       (ens[FACE88_ANCHORS], obs.dlib68[IBUG68_ANCHORS], obs.mediapipe88[FACE88_ANCHORS])])
    errors = np.array(errors)
    assert len(errors) >= 3
    ens, dlib, mp = errors.mean(axis=0)
    assert ens < min(dlib, mp), errors


@pytest.mark.shared
def test_ibug68_lids_are_mediapipes_where_it_sees_the_eyes_shut(shared_data, ensemble_teacher, astronaut_labels,
                                                                 monkeypatch):
    """Two CelebA faces whose lids a person sees shut (benchmarks/data/closed_eyes.txt) where dlib draws them
    open (eye openness 0.22-0.25): the iBUG-68 ensemble's lids close with MediaPipe's, and only the 8 lid
    points change. On the astronaut's open eyes nothing changes."""
    from facemark.geometry.openness import eye_openness
    from facemark.images import load_image
    from facemark.labels import ensemble

    params = ensemble_teacher.params
    lids = [i + k for i in (36, 42) for k in (1, 2, 4, 5)]
    for name in ("6109_155185.jpg", "705_061176.jpg"):
        obs = ensemble_teacher.observe(load_image(shared_data / "celeba" / "images" / name))
        assert obs.dlib68 is not None and obs.mediapipe88 is not None, name
        mp_eyes = eye_openness(obs.mediapipe88)
        assert (mp_eyes < ensemble.SHUT_EYE).all() and (eye_openness(obs.dlib68, "ibug68") > 0.2).all(), name
        shut = ensemble.ensemble_ibug68(params, obs.dlib68, obs.mediapipe88)
        assert (eye_openness(shut, "ibug68") < ensemble.SHUT_EYE).all(), (name, eye_openness(shut, "ibug68"))
        with monkeypatch.context() as m:
            m.setattr(ensemble, "SHUT_EYE", 0.0)  # never shut: dlib's lids, as before
            open_lids = ensemble.ensemble_ibug68(params, obs.dlib68, obs.mediapipe88)
        others = np.setdiff1d(np.arange(68), lids)
        np.testing.assert_array_equal(shut[others], open_lids[others])
        # the lids stay between their eye's corners, along the eye
        for i in (36, 42):
            axis = shut[i + 3] - shut[i]
            t = (shut[[i + 1, i + 2, i + 4, i + 5]] - shut[i]) @ axis / (axis @ axis)
            assert ((t > 0.2) & (t < 0.8)).all(), (name, t)
    rgb, mp88 = astronaut_labels
    obs = ensemble_teacher.observe(rgb)
    assert (eye_openness(obs.mediapipe88) > ensemble.SHUT_EYE).all()
    with monkeypatch.context() as m:
        m.setattr(ensemble, "SHUT_EYE", 0.0)
        before = ensemble.ensemble_ibug68(params, obs.dlib68, obs.mediapipe88)
    np.testing.assert_array_equal(ensemble.ensemble_ibug68(params, obs.dlib68, obs.mediapipe88), before)
