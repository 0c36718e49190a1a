// Eye and mouth openness from the points (facemark's openness module): the mean gap between facing lid (or inner
// lip) points over the distance between the corners. Offsets inside each region, per layout.

const LAYOUTS = {
  face88: { eyeCorners: [0, 4], eyePairs: [[1, 7], [2, 6], [3, 5]], mouthCorners: [0, 6], mouthPairs: [[13, 20], [14, 19], [15, 18]] },
  ibug68: { eyeCorners: [0, 3], eyePairs: [[1, 5], [2, 4]], mouthCorners: [0, 6], mouthPairs: [[13, 19], [14, 18], [15, 17]] },
};

function ratio(points, [start], corners, pairs) {
  const d = (a, b) => Math.hypot(points[start + a][0] - points[start + b][0], points[start + a][1] - points[start + b][1]);
  const width = d(...corners);
  return width > 0 ? pairs.reduce((s, [a, b]) => s + d(a, b), 0) / pairs.length / width : NaN;
}

/** {eyes: [image-left eye, image-right eye], mouth} or null for a layout without them. */
export function openness(points, scheme) {
  const layout = LAYOUTS[scheme.name];
  if (!layout) return null;
  return {
    eyes: ["left_eye", "right_eye"].map((eye) => ratio(points, scheme.slice(eye), layout.eyeCorners, layout.eyePairs)),
    mouth: ratio(points, scheme.slice("mouth"), layout.mouthCorners, layout.mouthPairs),
  };
}
