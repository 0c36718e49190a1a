// The eye refiner (facemark.pipeline.eyes): each eye of a face88 shape cut level on a patch of its own, framed by
// its two corners, and its six lid points placed again by a small network that reads the patch and the landmark
// network's own eye (the prior), so that shut eyes close. The image-right eye's patch is mirrored so one network
// serves both. Corners and every other point stay as they were.

import { CropTransform, cropImage } from "./crops.js";

const EYE_CROP = 64; // side of the square an eye is cut from
const EYE_WIDTH = 64, EYE_HEIGHT = 40; // the patch: the square's middle rows
const EYE_TOP = (EYE_CROP - EYE_HEIGHT) / 2;
const EYE_CORNER_GAP = 32; // pixels between the corners in the patch
const EYE_LIDS = [1, 2, 3, 5, 6, 7];
const MIRROR_OFFSETS = [4, 3, 2, 1, 0, 7, 6, 5];

/** The square crop of one eye from its 8 points (face88 eye order): its corners 0 and 4 on the middle row. */
export function eyeTransform(eye) {
  const [ax, ay] = eye[0], [bx, by] = eye[4];
  const gap = Math.max(Math.hypot(bx - ax, by - ay), 1e-3);
  return new CropTransform((ax + bx) / 2, (ay + by) / 2, (EYE_CROP * gap) / EYE_CORNER_GAP, EYE_CROP,
    Math.atan2(by - ay, bx - ax));
}

/** Image pixels of an eye's 8 points -> patch pixels in the image-left eye's offset order (mirrored: the
 * image-right eye's points permuted by MIRROR_OFFSETS). */
export function toPatch(t, eye, mirrored) {
  const p = t.toCrop(eye).map(([x, y]) => [mirrored ? EYE_CROP - 1 - x : x, y - EYE_TOP]);
  return mirrored ? MIRROR_OFFSETS.map((m) => p[m]) : p;
}

/** Patch pixels (the image-left eye's offset order) -> image pixels in the eye's own order. */
export function fromPatch(t, patchPoints, mirrored) {
  let p = patchPoints.map(([x, y]) => [mirrored ? EYE_CROP - 1 - x : x, y + EYE_TOP]);
  if (mirrored) {
    const q = new Array(8);
    MIRROR_OFFSETS.forEach((m, k) => { q[m] = p[k]; });
    p = q;
  }
  return t.toImage(p);
}

/** The patch's network input: the square's middle rows, mirrored for the image-right eye, in [-1, 1] (CHW). */
function patchInput(square, mirrored, x, offset) {
  const plane = EYE_WIDTH * EYE_HEIGHT, d = square.data;
  for (let y = 0; y < EYE_HEIGHT; y++) {
    for (let u = 0; u < EYE_WIDTH; u++) {
      const i = ((y + EYE_TOP) * EYE_CROP + (mirrored ? EYE_CROP - 1 - u : u)) * 3, o = offset + y * EYE_WIDTH + u;
      x[o] = Math.fround(d[i] / 127.5) - 1;
      x[o + plane] = Math.fround(d[i + 1] / 127.5) - 1;
      x[o + 2 * plane] = Math.fround(d[i + 2] / 127.5) - 1;
    }
  }
}

export class EyeRefiner {
  constructor(ort, session) {
    this.ort = ort;
    this.session = session;
  }

  static async create(ort, base, options) {
    return new EyeRefiner(ort, await ort.InferenceSession.create(`${base}/eyes.onnx`, options));
  }

  /** One run on blank patches: the first run's cost (WebAssembly compilation, memory) paid while the page loads. */
  async warmUp() {
    const feed = { patches: new this.ort.Tensor("float32", new Float32Array(2 * 3 * EYE_WIDTH * EYE_HEIGHT), [2, 3, EYE_HEIGHT, EYE_WIDTH]) };
    if (this.session.inputNames.includes("prior")) feed.prior = new this.ort.Tensor("float32", new Float32Array(32), [2, 8, 2]);
    await this.session.run(feed);
  }

  /** Each shape's points with its lids placed again (a shape with a non-finite eye point is left as it is). */
  async refine(img, shapes, scheme) {
    const [l0] = scheme.slice("left_eye"), [r0] = scheme.slice("right_eye");
    const finite = (p) => Number.isFinite(p[0]) && Number.isFinite(p[1]);
    const eyes = [...Array(8).keys()].flatMap((k) => [l0 + k, r0 + k]);
    const usable = shapes.map((_, i) => i).filter((i) => eyes.every((j) => finite(shapes[i][j])));
    const out = shapes.map((p) => p.map((q) => q.slice()));
    if (!usable.length) return out;
    const m = 2 * usable.length, plane = 3 * EYE_WIDTH * EYE_HEIGHT, transforms = [];
    const x = new Float32Array(m * plane), prior = new Float32Array(m * 16);
    usable.forEach((i, k) => {
      [l0, r0].forEach((start, side) => {
        const eye = shapes[i].slice(start, start + 8), t = eyeTransform(eye), j = 2 * k + side;
        transforms.push(t);
        patchInput(cropImage(img, t), side === 1, x, j * plane);
        toPatch(t, eye, side === 1).forEach(([u, v], p) => { prior[j * 16 + 2 * p] = u; prior[j * 16 + 2 * p + 1] = v; });
      });
    });
    const feed = { patches: new this.ort.Tensor("float32", x, [m, 3, EYE_HEIGHT, EYE_WIDTH]) };
    if (this.session.inputNames.includes("prior")) feed.prior = new this.ort.Tensor("float32", prior, [m, 8, 2]);
    const result = await this.session.run(feed);
    const y = result.points.data;
    usable.forEach((i, k) => {
      [l0, r0].forEach((start, side) => {
        const j = 2 * k + side, pts = [];
        for (let p = 0; p < 8; p++) pts.push([y[(j * 8 + p) * 2], y[(j * 8 + p) * 2 + 1]]);
        const image = fromPatch(transforms[j], pts, side === 1);
        for (const lid of EYE_LIDS) out[i][start + lid] = image[lid];
      });
    });
    return out;
  }
}
