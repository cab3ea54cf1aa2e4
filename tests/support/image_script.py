"""What the tests of detect_mask_image.py share: the keys of a photo's JSON line, and folders of copied photos."""

IMAGE_KEYS = {"image", "size", "mtime", "width", "height", "faces", "settings"}


def photo_folder(folder, photos, names=None):
    """Copy ``photos`` into ``folder`` (under ``names`` if given); return {name: original bytes}."""
    folder.mkdir(parents=True, exist_ok=True)
    kept = {}
    for photo, name in zip(photos, names or [p.name for p in photos]):
        (folder / name).write_bytes(photo.read_bytes())
        kept[name] = photo.read_bytes()
    return kept
