"""Server-side batching (`tl-app serve --enable-batching`): concurrent requests share model calls, each gets its
own rows; TF Serving's batching parameters file; its limits and errors."""
import threading
import time

import numpy as np
import pytest

from helpers import assert_one_line_error

from tl_app.serve.batching import Batcher, BatchingParameters, read_batching_parameters
from tl_app.serve.errors import ServingError


class SlowDouble:
    """A model call that takes `seconds` (default 50 ms) and records the batch sizes it was called with."""

    def __init__(self, fail=False, seconds=0.05):
        self.sizes, self.fail, self.seconds = [], fail, seconds
        self.lock = threading.Lock()

    def __call__(self, inputs):
        with self.lock:
            self.sizes.append(len(inputs["x"]))
        time.sleep(self.seconds)
        if self.fail:
            raise ServingError("INVALID_ARGUMENT", "the model refused")
        return {"y": inputs["x"] * 2, "id": inputs["x"][:, 0].astype(np.int64)}


def submit_all(batcher, call, requests, spacing=0.002):
    """Run every request from its own thread (bounded: 30 s); (answers, errors) in request order."""
    answers, errors = [None] * len(requests), [None] * len(requests)

    def one(i):
        try:
            answers[i] = batcher.run(call, ("model", "serving_default"), requests[i])
        except ServingError as exc:
            errors[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
        time.sleep(spacing)  # the first one is running when the others arrive
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return answers, errors


def test_concurrent_requests_share_calls_and_each_gets_its_own_rows():
    batcher = Batcher(BatchingParameters(max_batch_size=16, num_batch_threads=1))
    try:
        call = SlowDouble()
        requests = [{"x": np.full([1 + i % 3, 4], float(i), np.float32)} for i in range(8)]
        answers, errors = submit_all(batcher, call, requests)
        assert errors == [None] * 8
        for request, answer in zip(requests, answers):
            np.testing.assert_array_equal(answer["y"], request["x"] * 2)
            assert answer["id"].tolist() == request["x"][:, 0].astype(int).tolist()
        assert sum(call.sizes) == sum(len(r["x"]) for r in requests)
        assert len(call.sizes) < 8 and max(call.sizes) > 3  # the first ran alone; the rest waited and went together
    finally:
        batcher.stop()


def test_batches_stay_within_max_batch_size_and_pad_to_allowed_sizes():
    batcher = Batcher(BatchingParameters(max_batch_size=4, num_batch_threads=1, allowed_batch_sizes=(2, 4),
                                         max_enqueued_batches=100))
    try:
        call = SlowDouble()
        requests = [{"x": np.full([1, 2], float(i), np.float32)} for i in range(7)]
        answers, errors = submit_all(batcher, call, requests)
        assert errors == [None] * 7
        assert [a["y"][0, 0] for a in answers] == [2.0 * i for i in range(7)]
        assert set(call.sizes) <= {2, 4} and len(call.sizes) >= 2  # 7 examples: never 1 or 3 in a call
        with pytest.raises(ServingError, match="Task size 5 is larger than maximum input batch size 4"):
            batcher.run(call, ("model",), {"x": np.zeros([5, 2], np.float32)})
    finally:
        batcher.stop()


def test_a_failed_call_fails_every_request_of_its_batch_and_a_full_queue_says_unavailable():
    batcher = Batcher(BatchingParameters(max_batch_size=2, num_batch_threads=1, max_enqueued_batches=1))
    try:
        answers, errors = submit_all(batcher, SlowDouble(fail=True), [{"x": np.ones([1, 2], np.float32)}] * 2)
        assert all(e is not None and e.code == "INVALID_ARGUMENT" and "refused" in e.message for e in errors)
        # One batch running (0.5 s), one (full) waiting: a third request finds no room.
        answers, errors = submit_all(batcher, SlowDouble(seconds=0.5), [{"x": np.ones([2, 2], np.float32)}] * 3,
                                     spacing=0.05)
        refused = [e for e in errors if e is not None]
        assert len(refused) == 1 and refused[0].code == "UNAVAILABLE" and "queue" in refused[0].message
        assert sum(a is not None for a in answers) == 2
    finally:
        batcher.stop()


def test_a_servable_batches_real_signature_calls_with_the_same_answers():
    import tensorflow as tf

    from tl_app.serve.servable import Servable, Signature, TensorInfo

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def double(x):
        return {"y": x * 2.0, "n": tf.reduce_sum(x, axis=1)}

    sizes = []

    def fn(**inputs):
        sizes.append(int(inputs["x"].shape[0]))
        return double(**inputs)

    signature = Signature(name="serving_default", method_name="tensorflow/serving/predict",
                          inputs={"x": TensorInfo("DT_FLOAT", [-1, 3])},
                          outputs={"y": TensorInfo("DT_FLOAT", [-1, 3]), "n": TensorInfo("DT_FLOAT", [-1])}, fn=fn)
    batcher = Batcher(BatchingParameters(max_batch_size=64, batch_timeout_micros=20000, num_batch_threads=1))
    servable = Servable("tiny", 1, "/nonexistent", {}, {"serving_default": signature}, batcher=batcher)
    try:
        rng = np.random.default_rng(0)
        requests = [rng.normal(size=[1 + i % 2, 3]).astype(np.float32) for i in range(6)]
        answers = [None] * 6

        def one(i):
            answers[i] = servable.predict("", {"x": requests[i]}, ["y"])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        for request, answer in zip(requests, answers):
            assert set(answer) == {"y"}  # the output filter holds in a batch
            np.testing.assert_allclose(answer["y"], request * 2.0)
        assert sum(sizes) == 9 and len(sizes) < 6  # 20 ms of waiting let requests join
    finally:
        batcher.stop()


def test_tf_servings_parameters_file_and_its_mistakes(tmp_path, cli):
    good = tmp_path / "batching.txt"
    good.write_text("max_batch_size { value: 8 }\nbatch_timeout_micros { value: 500 }\n"
                    "num_batch_threads { value: 2 }\nallowed_batch_sizes: 4\nallowed_batch_sizes: 8\n")
    assert read_batching_parameters(str(good)) == BatchingParameters(
        max_batch_size=8, batch_timeout_micros=500, num_batch_threads=2, max_enqueued_batches=10,
        allowed_batch_sizes=(4, 8))
    (tmp_path / "saved_models").mkdir()
    for text, fragment in (("max_batch_size: 8\n", "not a BatchingParameters text proto"),
                           ("max_batch_size { value: 8 }\nbatch_size { value: 2 }\n", 'no field named "batch_size"'),
                           ("pad_variable_length_inputs: true\n", "pad_variable_length_inputs is not supported"),
                           ("max_batch_size { value: 8 }\nallowed_batch_sizes: 4\n", "end with max_batch_size"),
                           ("num_batch_threads { value: 0 }\n", "num_batch_threads must be at least 1")):
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        assert_one_line_error(cli("serve", str(tmp_path / "saved_models"), "--batching-parameters-file", str(bad)),
                              "--batching-parameters-file", fragment)
    assert_one_line_error(cli("serve", str(tmp_path / "saved_models"), "--batching-parameters-file",
                              str(tmp_path / "missing.txt")), "cannot read it")


def test_stopping_answers_requests_still_waiting_for_their_batch():
    batcher = Batcher(BatchingParameters(max_batch_size=8, batch_timeout_micros=30_000_000, num_batch_threads=1))
    errors = []

    def one():
        try:
            batcher.run(SlowDouble(), ("model",), {"x": np.ones([1, 2], np.float32)})
        except ServingError as exc:
            errors.append(exc)

    thread = threading.Thread(target=one)
    thread.start()
    time.sleep(0.2)  # queued, its batch waiting 30 s for company
    batcher.stop()
    thread.join(timeout=10)
    assert not thread.is_alive() and [e.code for e in errors] == ["UNAVAILABLE"]
