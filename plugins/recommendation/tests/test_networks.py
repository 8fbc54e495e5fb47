"""The networks: scoring every item agrees with scoring pairs; SASRec is causal and round-trips through
`save_pretrained` / `from_pretrained`."""

from __future__ import annotations

import pytest
import torch

from automl_recommendation.families import FAMILIES
from automl_recommendation.networks import MFBPR, NeuMF, SASRec, bert_config
from automl_recommendation.options import RecInfo

TINY_SASREC = {"hidden": 16, "layers": 2, "heads": 2, "max_len": 6, "dropout": 0.1, "negatives": 8}


def _tokens(n_users: int, n_items: int, length: int) -> torch.Tensor:
    tokens = torch.randint(1, n_items + 1, (n_users, length))
    tokens[0, :2] = 0  # a short history, left-padded
    return tokens


@pytest.mark.parametrize("make", [
    lambda: MFBPR(7, 30, 8, 2),
    lambda: MFBPR(7, 30, 8, 2, history=4),
    lambda: NeuMF(7, 30, 8, 8, [8, 4], 0.0, 2),
    lambda: NeuMF(7, 30, 8, 8, [8], 0.0, 2, history=4),
    lambda: NeuMF(7, 30, 8, 8, [8, 4], 0.0, 0, rating_mean=3.5),
], ids=["mf", "mf+history", "neumf", "neumf+history", "neumf-rating"])
def test_full_scores_equal_pair_scores(make):
    torch.manual_seed(0)
    net = make().eval()
    users = torch.arange(7)
    tokens = _tokens(7, 30, net.history_length) if net.history_length else None
    full = net.full_scores(users, tokens)
    pairs = net.pair_scores(users, torch.arange(30).expand(7, 30), tokens)
    assert full.shape == (7, 30)
    assert torch.allclose(full, pairs, atol=1e-5)


def test_sasrec_is_causal_and_left_padding_is_ignored():
    torch.manual_seed(0)
    net = SASRec.from_params(TINY_SASREC, 30).eval()
    tokens = _tokens(3, 30, 6)
    hidden = net.encode(tokens)
    later = tokens.clone()
    later[:, -1] = 29  # change the latest item
    assert torch.allclose(net.encode(later)[:, :-1], hidden[:, :-1], atol=1e-6)
    # padded positions are masked out of attention: whatever the padding embedding holds, the real positions
    # (row 0 starts after two pads) see nothing of it
    with torch.no_grad():
        net.bert.embeddings.word_embeddings.weight[0] = torch.randn(16) * 5
    assert torch.allclose(net.encode(tokens)[0, 2:], hidden[0, 2:], atol=1e-5)
    assert torch.isfinite(net.full_scores(None, tokens)).all()


def test_sasrec_saves_and_loads_through_transformers(tmp_path):
    from transformers import BertModel

    torch.manual_seed(0)
    net = SASRec.from_params(TINY_SASREC, 30).eval()
    tokens = _tokens(4, 30, 6)
    net.bert.save_pretrained(str(tmp_path))
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "config.json").exists()
    bert = BertModel.from_pretrained(str(tmp_path), local_files_only=True, add_pooling_layer=False)
    assert bert.config.is_decoder and bert.config.max_position_embeddings == 6 and bert.config.vocab_size == 31
    again = SASRec(bert, TINY_SASREC["negatives"]).eval()
    assert torch.allclose(again.full_scores(None, tokens), net.full_scores(None, tokens), atol=1e-6)


def test_sasrec_config_is_built_from_searched_parameters():
    config = bert_config({**TINY_SASREC, "hidden": 32, "heads": 4, "layers": 1, "max_len": 50}, 100)
    assert (config.hidden_size, config.num_attention_heads, config.num_hidden_layers) == (32, 4, 1)
    assert config.max_position_embeddings == 50 and config.vocab_size == 101 and config.pad_token_id == 0


def test_every_family_trains_one_step_on_its_own_batch(prepared):
    from automl.testing import sample_params

    p = prepared.prepared
    data = prepared.bind()
    rows = torch.as_tensor(p.train)
    for family in FAMILIES:
        (params,) = sample_params(family, p.info)
        net = family.network(params, p.info)
        batch = next(iter(data.batches(rows, 512, torch.Generator().manual_seed(0), net)))
        before = {k: v.clone() for k, v in net.state_dict().items()}
        loss = data.loss(net, batch, {})
        loss.backward()
        torch.optim.AdamW(net.parameters(), lr=1e-2).step()
        assert torch.isfinite(loss) and loss.item() > 0, family.name
        assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items()), family.name


def test_families_decline_data_that_is_not_interactions():
    from automl.api import TabularInfo

    info = TabularInfo(task="regression", n_train=10)
    assert all(f.accepts(RecInfo(task="implicit", n_train=10)) for f in FAMILIES)
    assert not any(f.accepts(info) for f in FAMILIES)
