"""mask_detector/pipeline.py: MaskPipeline skips faces too small to crop."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A small valid classifier (32x32 RGB in, softmax over two classes out), quick to load."""
    import keras

    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inputs))
    path = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def test_mask_pipeline_skips_faces_too_small_to_crop(tiny_model):
    from mask_detector.faces import Face
    from mask_detector.pipeline import MaskPipeline, PipelineSettings

    class FixedFaces:
        def __init__(self, faces):
            self.faces = faces

        def find(self, image):
            return self.faces, []

    pipeline = MaskPipeline(PipelineSettings(str(tiny_model)))
    pipeline.face_detector = FixedFaces([Face((5, 5, 5, 9), 0.9), Face((0, 0, 30, 30), 0.8),
                                         Face((100, 100, 120, 130), 0.7)])
    results = pipeline(np.full((50, 50, 3), 128, np.uint8))
    assert [result.box for result in results] == [(0, 0, 30, 30)]
    pipeline.face_detector = FixedFaces([Face((3, 3, 3, 3), 0.9)])
    assert pipeline(np.zeros((50, 50, 3), np.uint8)) == []
