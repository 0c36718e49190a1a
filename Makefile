# `make demo`: set up a local virtual environment and predict on the bundled sample image.
# `make test`: set up the same environment and run the test suite.
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[label,onnx,teacher,test]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/facemark predict examples/astronaut.png --draw --out out --json out/astronaut.jsonl

# the video demo on a clip made from the sample image (no data needed)
demo-video: setup
	$(PY) scripts/make_sample_video.py out/astronaut_clip.mp4
	$(VENV)/bin/facemark video out/astronaut_clip.mp4 --out out/astronaut_clip_landmarks.mp4 --json out/astronaut_clip.jsonl

test: setup
	$(PY) -m pytest -q

.PHONY: setup demo demo-video test
