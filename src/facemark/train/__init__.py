"""Everything that needs torch (the `train` extra): the network definitions (model.py, models/), augmentation,
the training loop and its multi-process helpers, torch weights files, evaluation of a weights file, and the
ONNX export that ships a network to the runtime.

The runtime (facemark.landmarker, .network, .detection, .predict, .video, ...) never imports this package: a user
install (`pip install facemark`) has no torch (tests/scenarios/test_light_install.py checks it)."""
