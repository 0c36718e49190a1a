"""The per-image pipeline behind `Landmarker.detect`, one module per stage: what the detector sees
(size_policy), candidates, the landmark passes, which way up (orientation), trust, crops, and images too
large to decode whole (large_images)."""
