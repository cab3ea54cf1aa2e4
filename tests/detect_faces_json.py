"""Print the faces one detector finds in some photos, as JSON: {photo name: [[x1, y1, x2, y2, score], ...]}.

Run by test_faces.py under each installed OpenCV major (it needs only cv2 and numpy).
    python tests/detect_faces_json.py DETECTOR PHOTO...
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402

from mask_detector.errors import UserError  # noqa: E402
from mask_detector.faces import create_face_detector  # noqa: E402


def main():
    name, photos = sys.argv[1], sys.argv[2:]
    try:
        face_detector = create_face_detector(name)
    except UserError as error:
        print(json.dumps({"opencv": cv2.__version__, "error": str(error)}))
        return
    faces = {}
    for photo in photos:
        found = face_detector.detect(cv2.imread(photo))
        faces[Path(photo).name] = [[*face.box, face.score] for face in found]
    print(json.dumps({"opencv": cv2.__version__, "faces": faces}))


if __name__ == "__main__":
    main()
