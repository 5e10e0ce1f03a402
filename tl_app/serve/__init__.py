"""Serving exports as TF Serving does: `tl-app serve` (REST + gRPC), `tl-app predict`, the serving check.

- `server`: the process (uvicorn for REST, grpcio for gRPC, one `ModelManager`); `sources`: which
  models (a directory of exports, a models.config, one model); `manager`: versions, polling, warmup,
  states; `servable`: one loaded version; `rest`, `grpc_service`: the two APIs; `json_tensor`: TF
  Serving's JSON tensor format; `responses`: status and metadata protos; `errors`: status codes.
- `client`: a REST client; `predict`: `tl-app predict`; `check`: the serving check before publishing.

Nothing here imports TensorFlow, grpc or starlette at import time.
"""
