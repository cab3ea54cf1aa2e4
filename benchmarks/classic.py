"""The classic face-mask pipeline, rewritten only as far as Keras 3 demands, as a baseline to measure against.

The classic recipe: every image loaded at 224x224 into one float32 array in
memory; MobileNetV2 (ImageNet, frozen) with an AveragePooling 7x7 / Dense
128 / Dropout 0.5 / Dense 2 head; ImageDataGenerator augmentation; Adam
1e-4 with time decay; 20 epochs of batch 32, no early stopping. At run
time: the SSD face detector on a 300x300 copy of the frame, then
``model.predict`` on the face crops, every frame.

    python benchmarks/classic.py --dataset dataset/observations --json result.json

trains it on the same leak-free split as train_mask_detector.py (same
seed), and reports the test accuracy and the training time.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mask_detector.assets import backbone_weights_path  # noqa: E402
from mask_detector.labels import two_class  # noqa: E402

CLASSIC_SIZE = 224
EPOCHS = 20
BATCH_SIZE = 32
LEARNING_RATE = 1e-4


def classic_model():
    import keras

    base = keras.applications.MobileNetV2(
        input_shape=(CLASSIC_SIZE, CLASSIC_SIZE, 3), include_top=False, weights=str(backbone_weights_path())
    )
    base.trainable = False
    x = keras.layers.AveragePooling2D(pool_size=(7, 7))(base.output)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    return keras.Model(base.input, outputs)


def classic_preprocess(rgb_faces):
    """Scale a float array of RGB 0-255 images to MobileNetV2's [-1, 1], as preprocess_input does."""
    return rgb_faces / 127.5 - 1.0


def load_all(paths):
    """Every image at 224x224 in one float32 array: memory grows with the dataset, as in the classic recipe."""
    array = np.empty((len(paths), CLASSIC_SIZE, CLASSIC_SIZE, 3), dtype=np.float32)
    for i, path in enumerate(paths):
        image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
        image = cv2.resize(image, (CLASSIC_SIZE, CLASSIC_SIZE), interpolation=cv2.INTER_NEAREST)
        array[i] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return classic_preprocess(array)


def train_classic(dataset_folders, seed=42):
    import keras
    # ImageDataGenerator is gone from Keras 3's public API but kept in its legacy module;
    # the classic recipe is measured with it, as it was written.
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    from mask_detector.data import find_images, split_without_leaks

    keras.utils.set_random_seed(seed)
    images = find_images(dataset_folders, report=lambda message: None)
    train, validation, test, _ = split_without_leaks(images, seed=seed)
    # The classic recipe has no validation split: it trains on everything but the test images.
    train_paths = train.paths + validation.paths
    train_labels = keras.utils.to_categorical(train.labels + validation.labels, 2)
    start = time.perf_counter()
    train_x = load_all(train_paths)
    test_x = load_all(test.paths)
    test_y = keras.utils.to_categorical(test.labels, 2)
    augmentation = ImageDataGenerator(
        rotation_range=20, zoom_range=0.15, width_shift_range=0.2, height_shift_range=0.2,
        shear_range=0.15, horizontal_flip=True, fill_mode="nearest",
    )
    model = classic_model()
    # Keras 3 dropped Adam(decay=); this schedule is the same time-based decay.
    schedule = keras.optimizers.schedules.InverseTimeDecay(LEARNING_RATE, 1, LEARNING_RATE / EPOCHS)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(
        augmentation.flow(train_x, train_labels, batch_size=BATCH_SIZE),
        steps_per_epoch=len(train_x) // BATCH_SIZE,
        validation_data=(test_x, test_y),
        validation_steps=len(test_x) // BATCH_SIZE,
        epochs=EPOCHS,
        verbose=2,
    )
    seconds = time.perf_counter() - start
    predicted = model.predict(test_x, batch_size=BATCH_SIZE, verbose=0).argmax(axis=1)
    accuracy = float(np.mean(predicted == np.array(test.labels)))
    return {"seconds": seconds, "test_accuracy": accuracy, "train_images": len(train_paths),
            "test_images": len(test.paths)}


class ClassicPipeline:
    """SSD at 300x300, then model.predict on the face crops at 224, every frame."""

    def __init__(self):
        from mask_detector.faces import SSDDetector

        self.face_detector = SSDDetector(confidence=0.5)
        self.model = classic_model()

    def detect(self, frame):
        return self.face_detector.detect(frame)

    def classify(self, frame, faces):
        """Each face's class probabilities, as MaskPipeline.classify gives them."""
        crops = []
        for face in faces:
            x1, y1, x2, y2 = face.box
            crop = cv2.cvtColor(frame[y1:y2, x1:x2], cv2.COLOR_BGR2RGB)
            crops.append(cv2.resize(crop, (CLASSIC_SIZE, CLASSIC_SIZE)).astype(np.float32))
        if not crops:
            return []
        predictions = self.model.predict(classic_preprocess(np.array(crops)), batch_size=32, verbose=0)
        return [two_class(float(p)) for p in predictions[:, 0]]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", action="append", required=True)
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    result = train_classic(args.dataset, args.seed)
    print(f"classic recipe: {result['seconds']:.0f} s, test accuracy {result['test_accuracy']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
