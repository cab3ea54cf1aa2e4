"""Running the pipeline over photo files: which files, one record per photo, where copies go."""

from pathlib import Path

import cv2

from mask_detector.errors import UserError, first_line
from mask_detector.files import IMAGE_SUFFIXES, read_image


def list_images(inputs):
    """Expand folders into their image files; a missing path stops the run at once."""
    paths = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UserError(f"folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            paths += found
        elif path.is_file():
            paths.append(path)
        else:
            raise UserError(f"{path} does not exist")
    return paths


def output_path_for(output, image_path, many):
    """Where the annotated copy of ``image_path`` goes: ``output`` itself for one photo named like an image."""
    output = Path(output)
    if not many and output.suffix.lower() in IMAGE_SUFFIXES:
        return output
    return output / image_path.name


def detect_in_photo(pipeline, path):
    """Read one photo and run the pipeline: (JSON record, image or None, results).

    A photo that cannot be read or processed gives a record with "error" and
    no image, so that one bad file never stops a folder run.
    """
    record = {"image": str(path)}
    try:
        image = read_image(path)
        results = pipeline(image)
    except (UserError, cv2.error, MemoryError) as error:
        message = str(error) if isinstance(error, UserError) else f"cannot process {path}: {first_line(error)}"
        return record | {"error": message}, None, []
    height, width = image.shape[:2]
    record |= {"width": width, "height": height, "faces": [result.to_json() for result in results]}
    return record, image, results


def summary_line(record):
    """The line printed for one photo: its faces and labels, or its error."""
    if "error" in record:
        return f"{record['image']}: error: {record['error']}"
    faces = record["faces"]
    masked = sum(face["label"] == "mask" for face in faces)
    return f"{record['image']}: {len(faces)} faces, {masked} mask, {len(faces) - masked} no mask"
