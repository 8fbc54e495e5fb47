"""The service's FastAPI application: `create_app(run_dir, ...)`.

Endpoints (every one but /health needs the API key when the service has one):

- `POST /predict` (tabular runs): `{"rows": [{column: value, ...}, ...]}` -> per row the predicted class (binary:
  P(positive) >= the predictor's decision threshold, the domain's cut-off or operating point) and the
  probability of each class, or the regression value; columns the model does not use are listed back.
- `POST /recommend` (recommendation runs): `{"user": ..., "k": 10}` -> the user's top-k items.
- `GET /schema`: input columns, kinds, training dtypes, known categories, target, classes, threshold.
- `GET /health`: up, and what it scores with (ONNX export or torch predictor).
- `GET /docs`, `GET /openapi.json`: the OpenAPI page, its request model generated from the predictor's columns.

Rows are checked by the shared validation layer (`automl.validation`, strict): a missing column, text in a
numeric column or a non-finite number is a 422 whose `detail` names the row and column (as FastAPI's own
validation errors do) and whose `error` says it in one line. Bodies over the size limit are a 413.
"""

# No `from __future__ import annotations` here: FastAPI reads the request model of `/predict` from the
# endpoint's annotation at run time, and that model is generated per run (a local name, not a global).
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse

from automl.errors import DataError
from automl.serve.backends import RecommenderBackend, choose_backend, probabilities_or_values
from automl.serve.schema import Prediction, PredictResponse, RecommendRequest, RecommendResponse, predict_request
from automl.serve.security import MAX_BODY_BYTES, BodyLimit, api_key_dependency
from automl.tasks import REGRESSION
from automl.validation import InvalidRows

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from automl.validation import InputSchema

#: Locations a 422 body lists per problem before it stops (the one-line `error` counts them all).
SHOWN = 10


def create_app(run_dir: str | Path, api_key: Optional[str] = None, max_body_bytes: int = MAX_BODY_BYTES,
               backend: str = "auto") -> FastAPI:
    """The application serving the run in `run_dir`; `api_key` None serves without access control."""
    run_dir = Path(run_dir).expanduser()
    scorer = choose_backend(run_dir, backend)
    auth = [Depends(api_key_dependency(api_key))]
    app = FastAPI(title=f"automl: {run_dir.name}", version=_version(),
                  description=f"Predictions of the run in {run_dir.name}, served from the {scorer.detail}.",
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.state.backend = scorer

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        return JSONResponse(status_code=422, content={"detail": _json_safe(jsonable_encoder(errors)),
                                                      "error": _one_line(errors)})

    @app.exception_handler(InvalidRows)
    async def invalid_rows(request: Request, exc: InvalidRows) -> JSONResponse:
        detail = [{"type": "value_error", "loc": ["body", "rows", r, issue.column], "msg": issue.problem}
                  for issue in exc.issues for r in issue.rows[:SHOWN]]
        return JSONResponse(status_code=422, content={"detail": detail, "error": exc.summary})

    @app.exception_handler(DataError)
    async def bad_data(request: Request, exc: DataError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": [], "error": str(exc)})

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, Any]:
        """Up, and what it scores with: `onnx` (the run's export, onnxruntime), `torch` or `recommender`."""
        schema = getattr(scorer, "schema", None)
        return {"status": "ok", "backend": scorer.name, "serving": scorer.detail,
                "task": schema.task if schema is not None else scorer.recommender.task}

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=auth)
    async def docs() -> Any:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title}: API")

    if isinstance(scorer, RecommenderBackend):
        _recommend_routes(app, scorer, auth)
    else:
        _predict_routes(app, scorer, auth)
    return app


def _predict_routes(app: FastAPI, scorer: Any, auth: list[Any]) -> None:
    from automl.validation import STRICT, check_rows, check_scores, decide_labels

    schema: "InputSchema" = scorer.schema
    request_model, _ = predict_request(schema)
    fields = [(col, f"c{i}") for i, col in enumerate(schema.columns)]

    @app.get("/schema", tags=["model"], dependencies=auth)
    async def get_schema() -> dict[str, Any]:
        """The columns a row needs (kind, training dtype, known categories), the target, classes, threshold."""
        return {**schema.to_json(), "endpoint": "/predict", "backend": scorer.name}

    @app.post("/predict", tags=["model"], dependencies=auth, response_model=PredictResponse,
              response_model_exclude_none=True)
    def predict(body: request_model) -> PredictResponse:  # type: ignore[valid-type]
        """Score raw rows: every column of the schema in every row (null for a missing value)."""
        frame = _frame(body.rows, fields, schema)
        checked = check_rows(frame, schema, STRICT)
        outputs = scorer.outputs(checked)
        scores = probabilities_or_values(outputs, schema)
        check_scores(scores, checked, STRICT)
        ignored = sorted({k for row in body.rows for k in (row.model_extra or {})})
        notes = [issue.describe(len(frame)) for issue in checked.issues if not issue.fatal]
        if schema.task == REGRESSION:
            predictions = [Prediction(value=float(v)) for v in outputs]
        else:
            labels = decide_labels(scores, schema)
            names = [str(c) for c in schema.classes]
            predictions = [Prediction(label=_plain(label), probabilities=dict(zip(names, map(float, probs))))
                           for label, probs in zip(labels, outputs)]
        return PredictResponse(predictions=predictions, classes=list(schema.classes) if schema.classes else None,
                               positive_class=schema.positive_class, threshold=schema.threshold,
                               ignored_columns=ignored, notes=notes, backend=scorer.name)


def _recommend_routes(app: FastAPI, scorer: RecommenderBackend, auth: list[Any]) -> None:
    rec = scorer.recommender

    @app.get("/schema", tags=["model"], dependencies=auth)
    def get_schema() -> dict[str, Any]:
        """What the recommender knows: its task, users and items."""
        return {"task": rec.task, "endpoint": "/recommend", "family": rec.meta.lead.family,
                "users": len(rec.user_ids), "items": len(rec.item_ids), "backend": scorer.name}

    @app.post("/recommend", tags=["model"], dependencies=auth, response_model=RecommendResponse)
    def recommend(body: RecommendRequest) -> RecommendResponse:
        """The user's top-k items they have not interacted with; an unknown user gets the most popular."""
        out = rec.recommend(body.user, k=body.k)
        items = [{"rank": int(r.rank), "item": _plain(r.item), "score": float(r.score), "source": str(r.source)}
                 for r in out.itertuples(index=False)]
        return RecommendResponse(user=body.user, known_user=rec.known(body.user), items=items)


def _frame(rows: list[Any], fields: list[tuple[str, str]], schema: "InputSchema") -> "pd.DataFrame":
    """The validated rows as a DataFrame of the schema's columns (numbers float64, categories text): numpy
    arrays first, which costs a tenth of a Series per column on a one-row request."""
    import numpy as np
    import pandas as pd

    numeric, columns = set(schema.numeric), {}
    for col, name in fields:
        values = [getattr(r, name) for r in rows]
        columns[col] = (np.array([np.nan if v is None else v for v in values], dtype=np.float64) if col in numeric
                        else np.array(values, dtype=object))
    return pd.DataFrame(columns, copy=False)


def _json_safe(value: Any) -> Any:
    """JSON has no inf or NaN: an offending input echoed in a 422 is written as text ("inf")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _one_line(errors: Any) -> str:
    """FastAPI's validation errors as one line: where (rows[3].age) and what, then how many more."""
    if not errors:
        return "invalid request"
    first = errors[0]
    loc = [p for p in first.get("loc", ()) if p != "body"]
    where = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(loc))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where or 'body'}: {first.get('msg', 'invalid')}{more}"


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("vertical-automl")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"
