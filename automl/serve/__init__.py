"""`automl serve RUN_DIR`: a run's predictor over HTTP (FastAPI + uvicorn), bound to 127.0.0.1 by default.

- `schema.py`: the request and response models, generated from the predictor's `InputSchema`;
- `backends.py`: what scores: the run's ONNX export (onnxruntime, no torch) when there is a current one, else
  the torch predictor; the recommender for the recommendation domain;
- `security.py`: the API key (a header, checked in constant time, never logged) and the body size limit;
- `app.py`: the FastAPI application: `/predict` or `/recommend`, `/schema`, `/health`, `/docs`;
- `process.py`: `served(run_dir)`, the command in a child process, for tests and benchmarks.
"""
