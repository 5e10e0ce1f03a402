"""TF Serving warmup requests: `assets.extra/tf_serving_warmup_requests` in every export.

TF Serving replays this file when it loads a version (`--enable_model_warmup`, on by default) and
reports the version AVAILABLE only afterwards, so the first real request does not pay for lazy
initialisation. The file is a TFRecord of `PredictionLog` protos whose `predict_log.request` is a
`PredictRequest`, built here with `tensorflow-serving-api`'s own protos; TF Serving reads at most
1000 records. tl_app writes one request per example, from real validation examples (10 by default),
already in the form the `serving_default` signature takes (encoded images, raw strings, pixels).

Examples:
    >>> import numpy as np, tempfile
    >>> export_dir = tempfile.mkdtemp()
    >>> path = write_warmup_file(export_dir, {"pixels": np.zeros([3, 8, 8], np.float32)})  # doctest: +SKIP
    >>> [sorted(r.inputs) for r in read_warmup_requests(export_dir)]  # doctest: +SKIP
    [['pixels'], ['pixels'], ['pixels']]
"""
import os

import numpy as np

WARMUP_FILE = "tf_serving_warmup_requests"
ASSETS_EXTRA = "assets.extra"
MAX_RECORDS = 1000  # TF Serving's WarmupConsts::kMaxNumRecords
DEFAULT_EXAMPLES = 10


def warmup_path(export_dir):
    return os.path.join(export_dir, ASSETS_EXTRA, WARMUP_FILE)


def predict_request(inputs, model_name="", signature_name="serving_default"):
    """A `PredictRequest` holding `inputs` (name -> array, batch first).

    Args:
        inputs: input name -> numpy array (strings as an object array of bytes).
        model_name: `model_spec.name` (TF Serving ignores it in warmup records).
        signature_name: `model_spec.signature_name`.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def split_examples(inputs, limit=DEFAULT_EXAMPLES):
    """One single-example batch per example: `{name: array[N, ...]}` -> up to `limit` `{name: array[1, ...]}`."""
    n = min(len(next(iter(inputs.values()))), limit)
    return [{name: np.asarray(value)[i:i + 1] for name, value in inputs.items()} for i in range(n)]


def write_warmup_file(export_dir, inputs, model_name="", signature_name="serving_default", limit=DEFAULT_EXAMPLES):
    """Write `assets.extra/tf_serving_warmup_requests`: one PredictRequest per example of `inputs`; returns its path.

    Args:
        export_dir: the SavedModel directory (its `assets.extra/` is created if missing).
        inputs: the signature's inputs for N examples, name -> array [N, ...].
        model_name: written into each request's model_spec.
        signature_name: the signature the requests call.
        limit: at most this many records (1 to 1000).
    """
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    if not 1 <= limit <= MAX_RECORDS:
        raise ValueError(f"warmup records: {limit} is not within 1..{MAX_RECORDS}")
    path = warmup_path(export_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for example in split_examples(inputs, limit):
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=predict_request(example, model_name, signature_name)))
            writer.write(log.SerializeToString())
    return path


def read_prediction_logs(export_dir):
    """The `PredictionLog` records of the export's warmup file ([] when it has none); ValueError past 1000."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = warmup_path(export_dir)
    if not os.path.isfile(path):
        return []
    logs = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        if len(logs) == MAX_RECORDS:
            raise ValueError(f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
        logs.append(prediction_log_pb2.PredictionLog.FromString(record))
    return logs


def read_warmup_requests(export_dir):
    """The PredictRequests of the export's warmup file; ValueError for a record that is not a predict log."""
    requests = []
    for index, log in enumerate(read_prediction_logs(export_dir)):
        kind = log.WhichOneof("log_type")
        if kind != "predict_log":
            raise ValueError(f"warmup record {index}: {kind} records are not supported (tl-app serve replays "
                             "predict_log records)")
        requests.append(log.predict_log.request)
    return requests
