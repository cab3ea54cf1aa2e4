"""evaluate_mask_detector.py on a few real annotated photos, updating the model card."""

import json
import shutil

from conftest import require, run_script


def test_script_on_a_few_real_photos(voc_dev, samples, default_model, tmp_path):
    folder = tmp_path / "voc"
    for part, suffix in (("images", ".jpg"), ("annotations", ".xml")):
        (folder / part).mkdir(parents=True)
        for photo in samples[:3]:
            shutil.copyfile(require(voc_dev / part / (photo.stem + suffix)), folder / part / (photo.stem + suffix))
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
