# `make demo`: set up the user install (no torch: onnxruntime, numpy, Pillow, headless OpenCV) in .venv-light
#              and predict on the bundled sample image.
# `make test`: set up the developer install (every extra: torch, MediaPipe, dlib, ...) in .venv and run the tests.
# `make light-check`: the user install runs predict and video without torch (CI runs it after the tests).
# `make web`: build the browser page that `facemark web` serves (npm ci; docs/web.md).
VENV ?= .venv
LIGHT ?= .venv-light
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[train,label,teacher,plot,test,ray,web]"
	touch $@

$(LIGHT)/.installed: pyproject.toml
	python3 -m venv $(LIGHT)
	$(LIGHT)/bin/python -m pip install -q --upgrade pip
	$(LIGHT)/bin/python -m pip install -q -e .
	touch $@

setup: $(VENV)/.installed

light: $(LIGHT)/.installed

demo: light
	$(LIGHT)/bin/facemark predict examples/astronaut.png --draw --out out --json out/astronaut.jsonl

# the video demo on a clip made from the sample image (no data needed)
demo-video: light
	$(LIGHT)/bin/python scripts/make_sample_video.py out/astronaut_clip.mp4
	$(LIGHT)/bin/facemark video out/astronaut_clip.mp4 --out out/astronaut_clip_landmarks.mp4 --json out/astronaut_clip.jsonl

light-check: demo demo-video
	$(LIGHT)/bin/python scripts/check_light_install.py examples/astronaut.png

test: setup
	$(PY) -m pytest -q

# the browser page (`facemark web`): npm ci on web/package-lock.json, then onnxruntime-web's files into web/vendor/ort
web: web/vendor/ort/.built

web/vendor/ort/.built: web/package.json web/package-lock.json web/build.mjs
	cd web && npm ci --no-audit --no-fund && node build.mjs
	touch $@

.PHONY: setup light demo demo-video light-check test web
