"""Artifacts that cannot lie, and predictions that are never silently wrong: a changed or damaged predictor file
is refused with one line naming it, a missing plugin is named for installation, and a row that cannot be scored
never gets a label."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

import automl
from automl.errors import AutoMLError, MissingPluginError


@pytest.fixture(scope="module")
def trained(tmp_path_factory, credit_frame):
    run_dir = tmp_path_factory.mktemp("trained")
    automl.AutoML(overrides=["search.n_workers=0", "search.families=[mlp]", "search.n_trials=2",
                             "trainer.max_epochs=2"]).fit(data=credit_frame.drop(columns=["rownames"]),
                                                          target="Status", run_dir=run_dir)
    return run_dir


@pytest.fixture
def copy(trained, tmp_path):
    shutil.copytree(trained, tmp_path / "run")
    return tmp_path / "run"


def _one_line(exc) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_predictor_json_records_a_sha256_of_every_file_and_the_plugins_it_needs(trained):
    meta = json.loads((trained / "predictor" / "predictor.json").read_text())
    files = {p.name for p in (trained / "predictor").iterdir() if p.name != "predictor.json"}
    assert set(meta["files"]) == files and all(len(h) == 64 for h in meta["files"].values())
    assert meta["requires"] == {"domain tabular": "vertical-automl", "model family mlp": "vertical-automl"}


def test_a_flipped_byte_in_the_weights_is_refused_naming_the_file(copy):
    weights = copy / "predictor" / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one bit, in the middle of a tensor: it would load and score
    weights.write_bytes(bytes(raw))
    with pytest.raises(AutoMLError) as err:
        automl.load(copy)
    assert "model.safetensors" in _one_line(err) and "SHA-256" in str(err.value)


@pytest.mark.parametrize("damage", ["truncate_weights", "shorten_preprocessing", "delete_weights"])
def test_a_damaged_artifact_is_one_line_naming_the_file(copy, damage):
    folder = copy / "predictor"
    if damage == "truncate_weights":
        path = folder / "model.safetensors"
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "shorten_preprocessing":
        path = folder / "preprocessing.json"
        state = json.loads(path.read_text())
        state["mean"] = state["mean"][:-1]
        path.write_text(json.dumps(state))
    else:
        path = folder / "model.safetensors"
        path.unlink()
    with pytest.raises(AutoMLError) as err:
        automl.load(copy)
    assert path.name in _one_line(err)


def test_unreadable_files_without_checksums_are_still_one_line(copy):
    """A predictor saved before checksums (or with them removed): the format's own error becomes one line."""
    meta_file = copy / "predictor" / "predictor.json"
    meta = json.loads(meta_file.read_text())
    meta.pop("files")
    meta_file.write_text(json.dumps(meta))
    path = copy / "predictor" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(AutoMLError) as err:
        automl.load(copy)
    assert "cannot be read" in _one_line(err)


def test_a_predictor_whose_plugin_is_missing_names_what_to_install(copy):
    meta_file = copy / "predictor" / "predictor.json"
    meta = json.loads(meta_file.read_text())
    meta["members"][0]["family"] = "claims_net"
    meta["requires"]["model family claims_net"] = "automl-claims==1.2.0"
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(MissingPluginError) as err:
        automl.load(copy)
    assert "pip install 'automl-claims==1.2.0'" in _one_line(err) and "claims_net" in str(err.value)


# -- prediction time: the inf that used to approve an applicant -------------------------------------------


@pytest.fixture
def inf_rows(credit_frame, tmp_path):
    rows = credit_frame.drop(columns=["rownames", "Status"]).head(6).copy()
    rows.loc[rows.index[2], "Income"] = np.inf
    path = tmp_path / "new.csv"
    rows.to_csv(path, index=False)
    return rows, path


def test_the_sdk_refuses_an_inf_naming_the_column_and_row(trained, inf_rows):
    rows, _ = inf_rows
    with pytest.raises(AutoMLError) as err:
        automl.load(trained).predict(rows)
    assert "Income" in _one_line(err) and "2" in str(err.value)


def test_automl_predict_refuses_inf_under_strict_and_labels_nothing_unscorable_under_coerce(automl_cli, trained,
                                                                                            inf_rows, tmp_path):
    _, path = inf_rows
    strict = subprocess.run([automl_cli, "predict", str(trained), str(path)], capture_output=True, text=True,
                            timeout=120)
    assert strict.returncode == 2 and "Income" in strict.stderr and "Traceback" not in strict.stderr
    assert len(strict.stderr.strip().splitlines()) == 1
    out = tmp_path / "scored.csv"
    coerce = subprocess.run([automl_cli, "predict", str(trained), str(path), "--policy", "coerce", "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert coerce.returncode == 0, coerce.stderr
    scored = pd.read_csv(out)
    assert len(scored) == 6
    assert "Income" in scored.loc[2, "warning"] and scored.drop(index=2)["warning"].isna().all()
    probability = scored[[c for c in scored.columns if c.startswith("probability_")]]
    finite = np.isfinite(probability.to_numpy(dtype=float)).all(axis=1)
    # never a label for a row whose probability is not finite
    assert scored.prediction[~finite].isna().all() and scored.prediction[finite].notna().all()
