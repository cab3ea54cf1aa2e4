# make demo   set up everything, then detect masks in the sample photos
# make test   set up everything, then run the test suite
# MIRROR=DIR  copy weights and data from a local mirror folder instead of downloading

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# A second, small environment with OpenCV 4, to test the face detectors on both majors.
VENV_CV4 := .venv-opencv4
OPENCV4 := opencv-python-headless==4.12.0.88
MIRROR ?=
ASSET_FLAGS := $(if $(MIRROR),--mirror $(MIRROR))

.PHONY: demo test setup assets train evaluate benchmark clean

demo: setup
	$(PY) detect_mask_image.py --image samples --no-display --output output/samples --json output/samples.jsonl

test: setup $(VENV_CV4)/.installed
	@command -v Xvfb >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq xvfb >/dev/null; } \
		|| echo "Xvfb not found: the window tests need it (apt-get install xvfb)"
	$(PY) -m pytest tests

setup: $(VENV)/.installed assets

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV_CV4)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV_CV4)
	$(VENV_CV4)/bin/pip install --quiet $(OPENCV4) $$(grep -E '^(numpy|pytest)==' requirements.txt)
	touch $@

assets: $(VENV)/.installed
	$(PY) -m mask_detector.assets $(ASSET_FLAGS)

train: setup
	$(PY) train_mask_detector.py --dataset dataset

evaluate: setup
	$(PY) evaluate_mask_detector.py --voc evaluation/facemask_voc_dev

clean:
	rm -rf $(VENV) $(VENV_CV4) output logs
