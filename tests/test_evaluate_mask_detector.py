"""evaluate_mask_detector.py on a few real annotated photos, updating the model card."""

import json
import shutil

from conftest import assert_one_line_error, require, run_script, user_env


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
