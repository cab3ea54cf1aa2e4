"""Obtain the third-party files the project needs, without committing them.

Every file comes either from a local mirror folder (laid out as
``assets/face_detector``, ``assets/keras/models``, ``datasets/NAME`` and
``samples``) or from its public URL, and is checked against a sha256 that is
written down here. A file that does not match is refused and removed.

    mask-detector fetch --mirror /path/to/mirror    # or: python -m mask_detector.assets --mirror ...
    mask-detector fetch                             # download instead

Everything goes into the project's folder: the clone, or, for a command
installed with `pip install .`, the user's data folder
(~/.local/share/mask-detector; $MASK_DETECTOR_HOME to choose another), where
the shipped model installed with the package is copied too.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mask_detector import DEFAULT_MODEL, FACE_DETECTOR_DIR, PROJECT_ROOT, SHIPPED_MODELS
from mask_detector.errors import UserError, run_cli
from mask_detector.files import atomic_path, sha256_of, write_bytes_atomically
DATASET_DIR = PROJECT_ROOT / "dataset"
SAMPLES_DIR = PROJECT_ROOT / "samples"
EVALUATION_DIR = PROJECT_ROOT / "evaluation"
MIRROR_ENV = "MASK_DETECTOR_MIRROR"

MOBILENET_WEIGHTS = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


@dataclass(frozen=True)
class AssetFile:
    """One file: where it lives in a mirror, where it goes, its URL and hash."""

    mirror_path: str
    url: str
    sha256: str

    @property
    def name(self):
        return Path(self.mirror_path).name


OPENCV_SAMPLES = "https://raw.githubusercontent.com/opencv/opencv/4.x/samples/dnn/face_detector/"
OPENCV_3RDPARTY = "https://raw.githubusercontent.com/opencv/opencv_3rdparty/"

DETECTOR_FILES = (
    AssetFile(
        "assets/face_detector/face_detection_yunet_2023mar.onnx",
        "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
        "face_detection_yunet_2023mar.onnx",
        "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
    ),
    AssetFile(
        "assets/face_detector/opencv_face_detector_uint8.pb",
        OPENCV_3RDPARTY + "dnn_samples_face_detector_20180220_uint8/opencv_face_detector_uint8.pb",
        "5c71d752ef2cbf2f457ac82fdd580fcb2522fd04c5efdaed18eb6d9e2843fbed",
    ),
    AssetFile(
        "assets/face_detector/opencv_face_detector.pbtxt",
        OPENCV_SAMPLES + "opencv_face_detector.pbtxt",
        "5397808362fc6fb7c4044484848e297b22449d913a267fa7f8bd9d86dce29144",
    ),
    AssetFile(
        "assets/face_detector/res10_300x300_ssd_iter_140000.caffemodel",
        OPENCV_3RDPARTY + "dnn_samples_face_detector_20170830/res10_300x300_ssd_iter_140000.caffemodel",
        "2a56a11a57a4a295956b0660b4a3d76bbdca2206c4961cea8efe7d95c7cb2f2d",
    ),
    AssetFile(
        "assets/face_detector/deploy.prototxt",
        OPENCV_SAMPLES + "deploy.prototxt",
        "f62621cac923d6f37bd669298c428bb7ee72233b5f8c3389bb893e35ebbcf795",
    ),
)

# A mean adult face in 3-D (MediaPipe's canonical face mesh, Apache-2.0): the synthetic dataset turns heads
# with it (synthetic/head.py). It lives beside the face detectors, as a model of faces.
FACE_MESH = AssetFile(
    "assets/face_geometry/canonical_face_model.obj",
    "https://raw.githubusercontent.com/google-ai-edge/mediapipe/master/mediapipe/modules/face_geometry/data/"
    "canonical_face_model.obj",
    "5ecc0627d2925a83da0dbf63ccdc245a62affbeb8872c34ae2e63e35763ee2a9",
)
FACE_MESH_FILE = FACE_DETECTOR_DIR / FACE_MESH.name

BACKBONE_FILE = AssetFile(
    "assets/keras/models/" + MOBILENET_WEIGHTS,
    "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/" + MOBILENET_WEIGHTS,
    "3968811184c57c7ae8f7b7376a448e5abb4a64e58580e438d98205027035df4f",
)


@dataclass(frozen=True)
class AssetTree:
    """A folder of many files, checked as a whole by a digest of its contents.

    The digest is sha256 over the lines ``relative/path NUL sha256-of-file``
    sorted by path, so a single changed, missing or extra file is caught.
    ``archive_url`` and ``archive_subdir`` say where a public copy lives, if any.
    """

    name: str
    mirror_path: str
    digest: str
    file_count: int
    archive_url: str = ""
    archive_subdir: str = ""


DATASETS = (
    AssetTree(
        "observations",
        "datasets/observations",
        "c3561df555cc6e96d055d1a543c4d4d26d8d31d50280567e3b45d8b70d3c5848",
        1376,
        "https://github.com/prajnasb/observations/archive/refs/heads/master.zip",
        "observations-master/experiements/data",
    ),
    # Re-encoded and de-duplicated copy: only a mirror has it.
    AssetTree(
        "chandrikadeb7",
        "datasets/chandrikadeb7",
        "1002c6e809206ec7e3c347e108028b3dab13ab018d72d04fae132566b438cff2",
        3361,
    ),
)

# Annotated street photos for measuring, never for training: kept out of dataset/.
EVALUATION_SETS = (
    AssetTree(
        "facemask_voc_dev",
        "datasets/facemask_voc_dev",
        "d33b39cbef8a2b7ec329a7f8bf725dfba0fd9f1c064fa3212768d8cc76eb4007",
        428,
    ),
)

SAMPLES = AssetTree(
    "samples",
    "samples",
    "da5e762823c7652de5b66aaf9ec758bb6e29d4db53c524e4c5048f99c9cf51c9",
    6,
)


def tree_digest(folder):
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    lines = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(folder).as_posix()):
        relative = path.relative_to(folder).as_posix()
        lines.update(f"{relative}\0{sha256_of(path)}\n".encode())
    return lines.hexdigest(), len(files)


def keras_models_dir():
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def backbone_weights_path():
    return keras_models_dir() / MOBILENET_WEIGHTS


def _install_file(source_path, destination, expected_sha256):
    """Copy ``source_path`` to ``destination`` only if its hash is right."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(destination) as partial:
        shutil.copyfile(source_path, partial)
        actual = sha256_of(partial)
        if actual != expected_sha256:
            raise UserError(
                f"checksum mismatch for {destination.name}: expected {expected_sha256}, got {actual}; "
                "file refused"
            )


def _download(url, destination):
    if not url.startswith("https://"):
        raise UserError(f"refusing to download over an insecure URL: {url}")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(destination, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as error:
        raise UserError(
            f"cannot download {url} ({error}); give a local copy with --mirror DIR "
            f"(or ${MIRROR_ENV}) or connect to the internet"
        ) from None


def fetch_file(asset, destination, mirror=None):
    """Put one verified file at ``destination``; return 'present' or how it came."""
    destination = Path(destination)
    if destination.is_file() and sha256_of(destination) == asset.sha256:
        return "present"
    if mirror is not None:
        source = Path(mirror) / asset.mirror_path
        if not source.is_file():
            raise UserError(f"mirror {mirror} has no {asset.mirror_path}")
        _install_file(source, destination, asset.sha256)
        return "copied"
    with tempfile.TemporaryDirectory() as scratch:
        downloaded = Path(scratch) / asset.name
        _download(asset.url, downloaded)
        _install_file(downloaded, destination, asset.sha256)
    return "downloaded"


def _install_tree(source_folder, destination, tree):
    """Copy a folder in beside ``destination``, check it whole, then swap it in."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{tree.name}-", dir=destination.parent))
    try:
        staged = staging / tree.name
        shutil.copytree(source_folder, staged, copy_function=shutil.copyfile)
        digest, count = tree_digest(staged)
        if digest != tree.digest:
            raise UserError(
                f"checksum mismatch for {tree.name} ({count} files; expected {tree.file_count}): "
                "folder refused"
            )
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(staged, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_tree(tree, destination, mirror=None):
    destination = Path(destination)
    if destination.is_dir() and tree_digest(destination)[0] == tree.digest:
        return "present"
    if mirror is not None:
        source = Path(mirror) / tree.mirror_path
        if not source.is_dir():
            raise UserError(f"mirror {mirror} has no {tree.mirror_path}")
        _install_tree(source, destination, tree)
        return "copied"
    if not tree.archive_url:
        return "skipped (only a mirror has it)"
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "archive.zip"
        _download(tree.archive_url, archive)
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(scratch)
        _install_tree(Path(scratch) / tree.archive_subdir, destination, tree)
    return "downloaded"


def fetch_all(mirror=None, datasets=True, samples=True, report=print):
    """Fetch detectors, backbone weights, datasets and demo photos."""
    if mirror is not None and not Path(mirror).is_dir():
        raise UserError(f"mirror folder {mirror} does not exist")
    for asset in DETECTOR_FILES:
        report(f"{asset.name}: {fetch_file(asset, FACE_DETECTOR_DIR / asset.name, mirror)}")
    report(f"{FACE_MESH.name}: {fetch_file(FACE_MESH, FACE_MESH_FILE, mirror)}")
    report(f"{BACKBONE_FILE.name}: {fetch_file(BACKBONE_FILE, backbone_weights_path(), mirror)}")
    report(f"models/{DEFAULT_MODEL.name}: {install_shipped_model()}")
    if datasets:
        for tree in DATASETS:
            report(f"dataset/{tree.name}: {fetch_tree(tree, DATASET_DIR / tree.name, mirror)}")
        for tree in EVALUATION_SETS:
            report(f"evaluation/{tree.name}: {fetch_tree(tree, EVALUATION_DIR / tree.name, mirror)}")
    if samples:
        if mirror is not None:
            report(f"samples: {fetch_tree(SAMPLES, SAMPLES_DIR, mirror)}")
        else:
            report(f"samples: {_samples_from_dataset()}")


def install_shipped_model():
    """The shipped classifier, and its LiteRT float16 copy, in PROJECT_ROOT/models for a command installed with
    `pip install .`, which put the model beside the package (SHIPPED_MODELS); a clone has its own already."""
    if DEFAULT_MODEL.is_file():
        return "present"
    shipped = SHIPPED_MODELS / DEFAULT_MODEL.name
    if not shipped.is_file():
        return "not installed with the package; train one (`mask-detector train`) or give --model PATH"
    for source in (shipped, shipped.with_suffix(".json")):
        write_bytes_atomically(source.read_bytes(), DEFAULT_MODEL.with_name(source.name))
    # The scripts load the LiteRT copy by default: several times faster per face on a CPU than the .h5.
    exported = subprocess.run([sys.executable, "-m", "export_tflite", "--kind", "float16"], capture_output=True,
                              text=True)
    if exported.returncode != 0:
        raise UserError(f"the model was copied, but its LiteRT copy was not written: "
                        f"{(exported.stderr.strip().splitlines() or ['no message'])[-1]}")
    return f"copied from {SHIPPED_MODELS}, with its LiteRT float16 copy"


def _samples_from_dataset():
    """Without a mirror, demo photos are a few images of the seed's dataset."""
    if SAMPLES_DIR.is_dir() and any(SAMPLES_DIR.iterdir()):
        return "present"
    source = DATASET_DIR / "observations"
    picks = [sorted((source / cls).glob("*"))[:3] for cls in ("with_mask", "without_mask")]
    SAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    for path in (p for group in picks for p in group):
        shutil.copyfile(path, SAMPLES_DIR / path.name)
    return "taken from dataset/observations"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--mirror",
        default=os.environ.get(MIRROR_ENV) or None,
        help=f"local folder to copy from instead of downloading (default: ${MIRROR_ENV})",
    )
    parser.add_argument("--no-datasets", action="store_true", help="skip the training datasets")
    parser.add_argument("--no-samples", action="store_true", help="skip the demo photos")
    args = parser.parse_args(argv)
    fetch_all(args.mirror, datasets=not args.no_datasets, samples=not args.no_samples)


if __name__ == "__main__":
    run_cli(main)
