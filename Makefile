# make demo   set up everything, then detect masks in the sample photos
# make test   set up everything, then run the test suite
# MIRROR=DIR  copy weights and data from a local mirror folder instead of downloading

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# A second, small environment with OpenCV 4, to test the face detectors on both majors.
VENV_CV4 := .venv-opencv4
# OpenCV 4.12 wants numpy < 2.3.
OPENCV4 := opencv-python-headless==4.12.0.88 numpy==2.2.6
MIRROR ?=
ASSET_FLAGS := $(if $(MIRROR),--mirror $(MIRROR))
FLOAT16_MODEL := models/mask_detector_float16.tflite

.PHONY: demo live test setup assets train evaluate benchmark clean

demo: setup
	$(PY) detect_mask_image.py --image samples --no-display --output output/samples --json output/samples.jsonl --restart

live: setup
	$(PY) detect_mask_video.py

test: setup $(VENV_CV4)/.installed $(VENV)/.installed-ray
	@{ command -v Xvfb && command -v xdotool && command -v mosquitto && command -v systemd-analyze && command -v chromium && command -v chromedriver; } >/dev/null \
		|| { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq xvfb xdotool mosquitto systemd chromium chromium-driver >/dev/null; } \
		|| echo "Xvfb, xdotool, mosquitto, systemd-analyze, chromium or chromedriver not found: the window, service and web page tests need them (apt-get install xvfb xdotool mosquitto systemd chromium chromium-driver)"
	$(PY) -m pytest tests

setup: $(VENV)/.installed assets $(FLOAT16_MODEL)

# The LiteRT copy of the classifier: the same answers, three to four times faster per face on a CPU.
$(FLOAT16_MODEL): models/mask_detector.h5 $(VENV)/.installed
	$(PY) export_tflite.py --kind float16

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# The mask-detector command (pyproject.toml), run from this folder.
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# Ray is optional for users; the tests run a real local Ray instance.
$(VENV)/.installed-ray: requirements-ray.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-ray.txt
	touch $@

$(VENV_CV4)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV_CV4)
	$(VENV_CV4)/bin/pip install --quiet $(OPENCV4)
	touch $@

assets: $(VENV)/.installed
	$(PY) -m mask_detector.assets $(ASSET_FLAGS)

# Masked and wrongly masked faces drawn on the datasets' unmasked ones (make_masked_faces.py).
SYNTHETIC := dataset_synthetic

$(SYNTHETIC)/sources.jsonl: | setup
	$(PY) make_masked_faces.py --faces dataset/observations/without_mask --faces dataset/chandrikadeb7/without_mask \
		--output $(SYNTHETIC) --seed 0

# 160 px crops: half the false flags of 128 px on the street photos, for 30 % more classifier time (README).
train: setup $(SYNTHETIC)/sources.jsonl
	$(PY) train_mask_detector.py --dataset dataset --dataset $(SYNTHETIC) --image-size 160

evaluate: setup
	$(PY) evaluate_mask_detector.py --voc evaluation/facemask_voc_dev

benchmark: setup $(VENV)/.installed-ray
	$(PY) benchmarks/bench_pipeline.py
	$(PY) benchmarks/bench_video.py
	$(PY) benchmarks/bench_photos.py
	$(PY) benchmarks/bench_training.py

clean:
	rm -rf $(VENV) $(VENV_CV4) output logs $(SYNTHETIC)
