"""Training augmentation, on whole batches in torch: what a detector and a camera do to a face.

Geometry: one random similarity per face (box jitter as a detector gives it, zoom, rotation, horizontal flip
through the scheme's mirror permutation) maps the cached context crop onto the network's S×S view; the points
go through the exact inverse. Photometry: brightness/contrast/saturation, grey, blur, noise, occlusion, and what
photos do to faces: low resolution (a 30–60-px face scaled up), JPEG artefacts, and a neighbour's face
reaching into the crop.
Everything is drawn from a torch.Generator, so a seeded epoch is reproducible (and resumable).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from facemark.layouts import Scheme


@dataclass
class AugmentConfig:
    shift: float = 0.08  # max box-centre jitter, share of the crop side
    scale: float = 0.12  # zoom in [1 - scale, 1 + scale]
    rotate_deg: float = 20.0  # rotation std-dev-like bound: uniform in ±rotate_deg
    rotate_wide: float = 0.2  # probability of drawing the rotation from ±rotate_wide_deg instead (tilted heads)
    rotate_wide_deg: float = 45.0
    flip: float = 0.5  # probability of a horizontal flip
    colour: float = 0.3  # brightness / contrast / saturation jitter amplitude
    grey: float = 0.1  # probability of a grey image
    blur: float = 0.2  # probability of a blur
    noise: float = 0.2  # probability of sensor noise
    occlude: float = 0.25  # probability of a random rectangle over part of the face
    low_res: float = 0.15  # probability of a low-resolution face: the crop down to 32–80 px and back up
    jpeg: float = 0.15  # probability of JPEG artefacts (quality 10–50)
    neighbour: float = 0.1  # probability of another face of the batch reaching into a side of the crop


AUGMENT_PRESETS = {
    "default": AugmentConfig(),
    # a few hundred human-labelled faces need every variation they can get
    "heavy": AugmentConfig(shift=0.1, scale=0.2, rotate_deg=30.0, colour=0.4, grey=0.15, blur=0.3, noise=0.3,
                           occlude=0.4),
    "none": AugmentConfig(shift=0.0, scale=0.0, rotate_deg=0.0, rotate_wide=0.0, flip=0.0, colour=0.0, grey=0.0,
                          blur=0.0, noise=0.0, occlude=0.0, low_res=0.0, jpeg=0.0, neighbour=0.0),
}


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def random_geometry(n: int, cfg: AugmentConfig, size: int, g: torch.Generator):
    """Per face: 2×2 matrix M (output offsets -> context offsets, flip included), shift t (pixels), flip flag."""
    scale = _uniform(n, 1 - cfg.scale, 1 + cfg.scale, g)
    wide = torch.rand(n, generator=g) < cfg.rotate_wide
    bound = torch.where(wide, cfg.rotate_wide_deg, cfg.rotate_deg)
    angle = torch.deg2rad((torch.rand(n, generator=g) * 2 - 1) * bound)
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * cfg.shift * size
    flip = torch.rand(n, generator=g) < cfg.flip
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    m = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    mirror = torch.ones(n, 2, 1)
    mirror[flip, 0] = -1
    return mirror * m, shift, flip


def warp_batch(context: torch.Tensor, points: torch.Tensor, m: torch.Tensor, shift: torch.Tensor,
               flip: torch.Tensor, size: int, out_size: int, scheme: Scheme) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample (B, 3, C, C) float context crops to (B, 3, out, out) and carry the (B, P, 2) points along.

    `size` is the network view's side in context pixels; `out_size` the side the network reads (160·rho), so
    one output pixel is k = out_size / size context pixels. With c_in, c_out the crop centres, context
    position x and output pixel u are related by x - c_in = M (u - c_out) / k + shift (flip folded into M),
    so u = c_out + k M⁻¹ (x - c_in - shift).
    """
    b, _, c, _ = context.shape
    c_in, c_out, k = (c - 1) / 2, (out_size - 1) / 2, out_size / size
    # affine_grid works in [-1, 1] units with align_corners=False: x - c_in = n_in * C/2, u - c_out = n_out * out/2
    theta = torch.cat([m * (size / c), (shift * (2 / c)).unsqueeze(-1)], dim=-1)
    grid = F.affine_grid(theta, (b, 3, out_size, out_size), align_corners=False)
    out = F.grid_sample(context, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    rel = points - c_in - shift.unsqueeze(1)
    new_points = k * torch.linalg.solve(m.unsqueeze(1), rel.unsqueeze(-1)).squeeze(-1) + c_out
    perm = torch.tensor(scheme.flip)
    new_points[flip] = new_points[flip][:, perm]
    return out, new_points


def _blur(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """Box blur: as soft as a defocused or motion-smeared face needs, and far cheaper than a Gaussian."""
    return F.avg_pool2d(x, kernel, stride=1, padding=kernel // 2, count_include_pad=False)


def photometric(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Colour, grey, blur, noise and occlusion on (B, 3, S, S) images in [0, 1]."""
    b = x.shape[0]
    a = cfg.colour
    brightness = _uniform(b, -a / 2, a / 2, g).view(b, 1, 1, 1)
    contrast = _uniform(b, 1 - a, 1 + a, g).view(b, 1, 1, 1)
    saturation = _uniform(b, 1 - a, 1 + a, g).view(b, 1, 1, 1)
    saturation = torch.where((torch.rand(b, generator=g) < cfg.grey).view(b, 1, 1, 1), 0.0, saturation)
    # saturation, contrast and brightness folded into one pass: x' = A x + B grey + C per image
    # (the image mean is unchanged by the saturation step, so contrast can pivot on the input's mean)
    grey = x.mean(1, keepdim=True)
    mean = grey.mean((2, 3), keepdim=True)
    x = torch.addcmul(torch.addcmul((1 - contrast) * mean + brightness, grey, contrast * (1 - saturation)),
                      x, contrast * saturation)
    blur = torch.rand(b, generator=g) < cfg.blur
    kernel = torch.where(torch.rand(b, generator=g) < 0.5, 3, 5)
    for k in (3, 5):
        chosen = blur & (kernel == k)
        if chosen.any():
            x[chosen] = _blur(x[chosen], k)
    noisy = torch.rand(b, generator=g) < cfg.noise
    if noisy.any():
        sigma = _uniform(int(noisy.sum()), 0.01, 0.06, g).view(-1, 1, 1, 1)
        x[noisy] = x[noisy] + torch.randn(x[noisy].shape, generator=g) * sigma
    s = x.shape[-1]
    for i in torch.nonzero(torch.rand(b, generator=g) < cfg.occlude).flatten().tolist():
        w, h = (torch.randint(s // 8, s // 3, (2,), generator=g)).tolist()
        x0, y0 = torch.randint(0, s - w, (1,), generator=g).item(), torch.randint(0, s - h, (1,), generator=g).item()
        x[i, :, y0:y0 + h, x0:x0 + w] = torch.rand(3, 1, 1, generator=g)
    x = x.clamp(0, 1)
    x = low_resolution(x, cfg.low_res, g)
    x = jpeg_artefacts(x, cfg.jpeg, g)
    return neighbour_face(x, cfg.neighbour, g)


LOW_RES_SIDES = (32, 40, 48, 64, 80)  # crop sides in pixels: faces of about 25–65 px (crop = 1.25 × face)


def low_resolution(x: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    """With probability p per image, what a small face in a photo gives: the (B, 3, S, S) crop reduced to one of
    LOW_RES_SIDES (area average, as a camera or a downscaled photo does) and scaled back up bilinearly."""
    chosen = torch.rand(x.shape[0], generator=g) < p
    side = torch.randint(len(LOW_RES_SIDES), (x.shape[0],), generator=g)
    s = x.shape[-1]
    for k, target in enumerate(LOW_RES_SIDES):
        pick = chosen & (side == k)
        if pick.any() and target < s:
            small = F.interpolate(x[pick], size=(target, target), mode="area")
            x[pick] = F.interpolate(small, size=(s, s), mode="bilinear", align_corners=False)
    return x


def jpeg_artefacts(x: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    """With probability p per image, a JPEG round trip at quality 10–50 (OpenCV's libjpeg): block edges,
    ringing and colour bleeding as in heavily compressed photos."""
    import cv2

    chosen = torch.nonzero(torch.rand(x.shape[0], generator=g) < p).flatten().tolist()
    quality = torch.randint(10, 51, (x.shape[0],), generator=g)
    for i in chosen:
        rgb = (x[i].permute(1, 2, 0) * 255).round().byte().numpy()
        ok, data = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, int(quality[i])])
        if ok:  # channel order does not matter for a round trip
            x[i] = torch.from_numpy(cv2.imdecode(data, cv2.IMREAD_COLOR)).permute(2, 0, 1).float() / 255
    return x


def neighbour_face(x: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    """With probability p per image, another crop of the batch shifted sideways by 75–100% of the side covers
    the strip it reaches into (up to a quarter of the crop): a neighbour in a group photo. Points are unchanged:
    the network must keep to its own face."""
    b, _, _, s = x.shape
    chosen = torch.nonzero(torch.rand(b, generator=g) < p).flatten().tolist()
    if b < 2 or not chosen:
        return x
    source = x.clone()
    for i in chosen:
        j = (i + 1 + int(torch.randint(b - 1, (1,), generator=g))) % b
        shift = int(s * (0.75 + 0.25 * torch.rand(1, generator=g).item()))
        if shift >= s:
            continue
        if torch.rand(1, generator=g).item() < 0.5:  # the neighbour on the right: its left part shows
            x[i, :, :, shift:] = source[j, :, :, :s - shift]
        else:
            x[i, :, :, :s - shift] = source[j, :, :, shift:]
    return x


def augment_batch(context_uint8: torch.Tensor, points: torch.Tensor, size: int, out_size: int, scheme: Scheme,
                  cfg: AugmentConfig, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, C, 3) uint8 context crops + context points -> network input in [-1, 1] and its points."""
    x = context_uint8.permute(0, 3, 1, 2).float() / 255
    m, shift, flip = random_geometry(x.shape[0], cfg, size, g)
    x, pts = warp_batch(x, points.float(), m, shift, flip, size, out_size, scheme)
    x = photometric(x, cfg, g)
    return x * 2 - 1, pts


def centre_view(context_uint8: torch.Tensor, points: torch.Tensor, size: int, out_size: int,
                scheme: Scheme) -> tuple[torch.Tensor, torch.Tensor]:
    """The unaugmented network view (validation): the size×size centre of the context crop, at out_size."""
    n = context_uint8.shape[0]
    x = context_uint8.permute(0, 3, 1, 2).float() / 255
    m, shift, flip = torch.eye(2).repeat(n, 1, 1), torch.zeros(n, 2), torch.zeros(n, dtype=torch.bool)
    x, pts = warp_batch(x, points.float(), m, shift, flip, size, out_size, scheme)
    return x * 2 - 1, pts
