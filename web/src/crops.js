// The landmark network's crops: face box -> square -> crop, and the exact way back (the Python runtime's
// preprocessing module). Pixel-centre convention on both sides: x_crop = (x - cx) * S / side + S / 2 - 0.5,
// and a crop turned by `angle` (the direction of the crop's x axis in the image) shows a face of that roll upright.

import { affine, region, resize } from "./imaging.js";

export class CropTransform {
  constructor(cx, cy, side, size, angle = 0) {
    Object.assign(this, { cx, cy, side, size, angle });
  }

  get scale() {
    return this.size / this.side;
  }

  withAngle(angle) {
    return new CropTransform(this.cx, this.cy, this.side, this.size, angle);
  }

  /** Image pixels [[x, y], ...] -> crop pixels. */
  toCrop(points) {
    const c = Math.cos(this.angle), s = Math.sin(this.angle), k = this.scale, h = this.size / 2 - 0.5;
    return points.map(([x, y]) => {
      let dx = x - this.cx, dy = y - this.cy;
      if (this.angle) [dx, dy] = [c * dx + s * dy, c * dy - s * dx];
      return [dx * k + h, dy * k + h];
    });
  }

  /** Crop pixels -> image pixels: the exact inverse of toCrop. */
  toImage(points) {
    const c = Math.cos(this.angle), s = Math.sin(this.angle), k = this.scale, h = this.size / 2;
    return points.map(([x, y]) => {
      let u = (x + 0.5 - h) / k, v = (y + 0.5 - h) / k;
      if (this.angle) [u, v] = [c * u - s * v, s * u + c * v];
      return [u + this.cx, v + this.cy];
    });
  }

  /** The axis-aligned transform whose n×n crop holds the turned square (n: its bounding side + 2 pixels). */
  uprightCover() {
    const c = Math.abs(Math.cos(this.angle)), s = Math.abs(Math.sin(this.angle));
    const n = Math.ceil(this.size * (c + s) - 1e-9) + 2;
    return new CropTransform(this.cx, this.cy, (this.side * n) / this.size, n);
  }
}

/** The square (longer side × margin, same centre) around a box; with `angle`, the box is in the face's upright
 * frame (the image turned by -angle about the origin). */
export function squareCropTransform(box, size, margin, angle = 0) {
  const [x0, y0, x1, y1] = box;
  const side = Math.max(x1 - x0, y1 - y0, 1) * margin;
  let cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  if (angle) {
    const c = Math.cos(angle), s = Math.sin(angle);
    [cx, cy] = [c * cx - s * cy, s * cx + c * cy];
  }
  return new CropTransform(cx, cy, side, size, angle);
}

export function boxFromPoints(points) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of points) {
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
  }
  if (x0 === Infinity) throw new Error("no finite points to make a box from");
  return [x0, y0, x1, y1];
}

/** The network's framing of a shape: the square around its points' box taken in the frame turned by `angle`. */
export function pointsCropTransform(points, size, margin, angle = 0) {
  let p = points;
  if (angle) {
    const c = Math.cos(angle), s = Math.sin(angle);
    p = points.map(([x, y]) => [c * x + s * y, c * y - s * x]);
  }
  return squareCropTransform(boxFromPoints(p), size, margin, angle);
}

/** Roll of a face (radians): the direction from the centre of "left_eye" to the centre of "right_eye". */
export function rollAngle(points, scheme) {
  const centre = (name) => {
    const [a, b] = scheme.slice(name);
    let x = 0, y = 0, n = 0;
    for (let i = a; i < b; i++) {
      const [px, py] = points[i];
      if (Number.isFinite(px) && Number.isFinite(py)) { x += px; y += py; n++; }
    }
    return n ? [x / n, y / n] : null;
  };
  const l = centre("left_eye"), r = centre("right_eye");
  if (!l || !r) return 0;
  const dx = r[0] - l[0], dy = r[1] - l[1];
  return dx || dy ? Math.atan2(dy, dx) : 0;
}

/** The S×S crop (preprocessing.crop_image): the square's pixels cut with a black border, resized by Pillow's
 * antialiasing bilinear filter; a turned square is its upright cover, resized, then turned bilinearly. */
export function cropImage(img, t) {
  if (t.angle) return turnedCrop(img, t);
  const left = t.cx + 0.5 - t.side / 2, top = t.cy + 0.5 - t.side / 2;
  const right = left + t.side, bottom = top + t.side;
  const l0 = Math.floor(left), t0 = Math.floor(top), r0 = Math.ceil(right), b0 = Math.ceil(bottom);
  const part = region(img, l0, t0, r0, b0);
  return resize(part, t.size, t.size, [left - l0, top - t0, right - l0, bottom - t0], 3.0);
}

function turnedCrop(img, t) {
  const cover = t.uprightCover();
  const n = cover.size, size = t.size;
  const upright = cropImage(img, cover);
  const c = Math.cos(t.angle), s = Math.sin(t.angle), h = size / 2;
  return affine(upright, size, size, [c, -s, n / 2 - c * h + s * h, s, c, n / 2 - s * h - c * h]);
}
