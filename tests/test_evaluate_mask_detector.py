"""evaluate_mask_detector.py on a few real annotated photos, updating the model card."""

import json
import shutil

from support.scripts import ROOT, assert_one_line_error, require, run_all, run_script, user_env


def test_script_on_a_few_real_photos(voc_dev, samples, default_model, tmp_path):
    folder = voc_folder(voc_dev, samples[:3], tmp_path / "voc")
    card = tmp_path / "model.json"
    model = tmp_path / "model.h5"
    shutil.copyfile(default_model, model)
    card.write_text(json.dumps({"model": "model.h5"}))
    result = run_script(
        "evaluate_mask_detector.py", "--voc", folder, "--model", model, "--json", tmp_path / "figures.json",
        "--update-card",
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["photos"] == 3
    assert figures["face_recall"][">=32"]["faces"] > 0 and figures["face_recall"][">=32"]["recall"] > 0.5
    assert 0.0 <= figures["map_all"] <= 1.0
    assert "| face recall, faces >= 32 px |" in result.stdout
    stored = json.loads(card.read_text())["evaluations"]["voc (yunet)"]
    assert stored["map_all"] == figures["map_all"]
    # The card says how its figures were made.
    assert stored["command"] == (f"evaluate_mask_detector.py --voc {folder} --model {model} "
                                 f"--json {tmp_path / 'figures.json'} --update-card")


def voc_folder(voc_dev, photos, folder):
    """A small VOC folder with the annotated photos ``photos`` (sample photos are dev photos)."""
    for part, suffix in (("images", ".jpg"), ("annotations", ".xml")):
        (folder / part).mkdir(parents=True)
        for photo in photos:
            shutil.copyfile(require(voc_dev / part / (photo.stem + suffix)), folder / part / (photo.stem + suffix))
    return folder


def test_json_that_cannot_be_written_stops_before_the_work(voc_dev, samples, tmp_path):
    """Once: the evaluation ran for minutes, then failed on --json and lost everything."""
    folder = voc_folder(voc_dev, samples[:1], tmp_path / "voc")
    (tmp_path / "a file").write_text("")
    result = run_script("evaluate_mask_detector.py", "--voc", folder, "--json", tmp_path / "a file" / "e.json")
    assert_one_line_error(result, f"cannot write to {tmp_path / 'a file'}: it is a file")
    assert result.stdout == ""  # no photo was evaluated


def test_json_into_a_new_folder_is_written_and_the_console_stays_quiet(voc_dev, samples, default_model, tmp_path):
    folder = voc_folder(voc_dev, samples[:1], tmp_path / "voc")
    figures = tmp_path / "new" / "folder" / "e.json"
    result = run_script("evaluate_mask_detector.py", "--voc", folder, "--json", figures, env=user_env())
    assert result.returncode == 0, result.stderr
    assert json.loads(figures.read_text())["photos"] == 1
    assert result.stdout.startswith("1 photo, detector yunet, model mask_detector.h5\n")
    assert result.stderr == ""  # no library lines, for a user who set nothing


def broken(text, change):
    """An annotation's text with one mistake made in it."""
    if change == "empty":
        return ""
    if change == "truncated":
        return text[: len(text) // 2]
    if change == "not a number":
        return text.replace("<xmin>", "<xmin>abc", 1)
    if change == "no bndbox":
        start, end = text.index("<bndbox>"), text.index("</bndbox>") + len("</bndbox>")
        return text[:start] + text[end:]
    if change == "xmin > xmax":
        start = text.index("<xmin>") + len("<xmin>")
        return text[:start] + "9999" + text[text.index("</xmin>"):]
    if change == "unknown classes only":
        return text.replace("<name>with_mask<", "<name>face<").replace("<name>without_mask<", "<name>face<") \
            .replace("<name>mask_weared_incorrect<", "<name>face<")
    raise ValueError(change)


EXPECTED = {
    "empty": "annotations/maksssksksss44.xml: the annotation file is empty",
    "truncated": "annotations/maksssksksss44.xml: not valid XML, truncated or damaged",
    "not a number": "annotations/maksssksksss44.xml: object 1 (with_mask): <xmin> is 'abc43', not a number",
    "no bndbox": "annotations/maksssksksss44.xml: object 1 (with_mask) has no <bndbox>",
    "xmin > xmax": "annotations/maksssksksss44.xml: object 1 (with_mask): xmin 9999 is not less than xmax 80",
    "unknown classes only": "no usable face in",
}


def test_annotation_mistakes_are_one_line_naming_the_file(voc_dev, samples, tmp_path):
    """Issue 20, case 6: each mistake is one line naming the file, never 'unexpected ... please report this'."""
    photo = next(p for p in samples if p.name == "maksssksksss44.jpg")  # four faces, all with_mask
    runs = {}
    for change in EXPECTED:
        folder = voc_folder(voc_dev, [photo], tmp_path / change)
        xml = folder / "annotations" / "maksssksksss44.xml"
        xml.write_text(broken(xml.read_text(), change))
        runs[change] = ("evaluate_mask_detector.py", "--voc", folder)
    for change, result in run_all(runs).items():
        line = assert_one_line_error(result, EXPECTED[change])
        assert "please report" not in line and result.stdout == "", (change, line)
        if change == "unknown classes only":
            assert line.endswith("; found face 4"), line


def test_skipped_objects_and_files_are_counted(voc_dev, samples, tmp_path):
    """Issue 20, case 6: unknown classes, annotations without images, images without annotations are said."""
    photos = [p for p in samples if p.name in ("maksssksksss44.jpg", "maksssksksss716.jpg", "maksssksksss72.jpg")]
    folder = voc_folder(voc_dev, photos, tmp_path / "voc")
    xml = folder / "annotations" / "maksssksksss44.xml"
    xml.write_text(xml.read_text().replace("<name>with_mask<", "<name>face<", 2))
    (folder / "images" / "maksssksksss716.jpg").rename(folder / "images" / "no annotation.jpg")
    (folder / "images" / "maksssksksss72.jpg").unlink()
    fast = require(ROOT / "models" / "mask_detector_float16.tflite")
    result = run_script("evaluate_mask_detector.py", "--voc", folder, "--model", fast)
    assert result.returncode == 0, result.stderr[-3000:]
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == [
        f"note: {folder}: skipped 2 objects of classes it does not know (face 2); "
        "it knows with_mask, without_mask, incorrect_mask, mask_weared_incorrect",
        f"note: {folder}: skipped 2 annotations (maksssksksss716.xml, maksssksksss72.xml) without their image "
        "in images/",
        f"note: {folder}: skipped 1 image (no annotation.jpg) without an annotation",
    ], result.stderr
    assert result.stdout.startswith("1 photo,")  # scored on the one photo with both
