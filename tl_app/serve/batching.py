"""Server-side batching, as TF Serving's `--enable_batching`: concurrent requests to a signature share one model call.

Each (version, signature, input shapes past the batch dimension and dtypes) has
a queue. A request joins the open batch of its queue unless that would pass
`max_batch_size` examples; a batch runs when it is full, or once it has waited
`batch_timeout_micros` and one of the `num_batch_threads` threads is free. With
the default timeout of 0 a batch runs as soon as a thread is free, so batching
adds no wait when the server is idle and groups requests when it is busy. The
inputs are concatenated along the batch dimension (then padded to the next
`allowed_batch_sizes` entry, if given, by repeating the last example), the
signature runs once, and each request gets its own rows of every output.
`max_enqueued_batches` bounds the waiting batches per queue: beyond it a request
gets UNAVAILABLE, as in TF Serving.

The parameters come from the same text-proto file TF Serving reads
(`--batching_parameters_file`, message `tensorflow.serving.BatchingParameters`):

    max_batch_size { value: 64 }
    batch_timeout_micros { value: 2000 }
    num_batch_threads { value: 4 }
    max_enqueued_batches { value: 100 }

Example:
    >>> batcher = Batcher(BatchingParameters(max_batch_size=64))
    >>> batcher.run(lambda inputs: {"y": inputs["x"] * 2}, ("key",), {"x": np.ones([2, 3])})["y"].shape
    (2, 3)
    >>> batcher.stop()
"""
import collections
import dataclasses
import os
import threading
import time
from typing import Tuple

import numpy as np

from tl_app.errors import UserError
from tl_app.serve.errors import ServingError


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's batching parameters; the defaults are its scheduler's (threads: one per core).

    Args:
        max_batch_size: examples in one model call at most; a request with more gets INVALID_ARGUMENT.
        batch_timeout_micros: how long a batch that is not full waits for more requests.
        max_enqueued_batches: batches waiting per queue before requests get UNAVAILABLE.
        num_batch_threads: batches that run at once.
        allowed_batch_sizes: batch sizes the model is called with (increasing, the last max_batch_size).
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    allowed_batch_sizes: Tuple[int, ...] = ()


def read_batching_parameters(path):
    """`BatchingParameters` from a TF Serving batching parameters file; UserError naming what is wrong."""
    from google.protobuf import text_format

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise UserError(f"--batching-parameters-file {path}: cannot read it ({exc.strerror}).") from None
    proto = _message_class()()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as exc:
        raise UserError(f"--batching-parameters-file {path}: not a BatchingParameters text proto ({exc}); see "
                        "deploy/batching_parameters.txt.") from None
    if proto.pad_variable_length_inputs:
        raise UserError(f"--batching-parameters-file {path}: pad_variable_length_inputs is not supported by tl-app "
                        "serve; remove it (requests batch together when their shapes past the batch dimension match).")
    values = {name: getattr(proto, name).value for name in
              ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads")
              if proto.HasField(name)}
    parameters = BatchingParameters(**values, allowed_batch_sizes=tuple(proto.allowed_batch_sizes))
    problem = _problem(parameters)
    if problem:
        raise UserError(f"--batching-parameters-file {path}: {problem}.")
    return parameters


def _problem(parameters):
    for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
        if getattr(parameters, name) < 1:
            return f"{name} must be at least 1"
    if parameters.batch_timeout_micros < 0:
        return "batch_timeout_micros must not be negative"
    sizes = parameters.allowed_batch_sizes
    if sizes and (list(sizes) != sorted(set(sizes)) or sizes[-1] != parameters.max_batch_size or sizes[0] < 1):
        return "allowed_batch_sizes must increase and end with max_batch_size"
    return None


def _message_class():
    """tensorflow.serving.BatchingParameters (tensorflow-serving-api does not ship its module), fields 1-7."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(name="tl_app/batching_parameters.proto", package="tensorflow.serving",
                                              syntax="proto3", dependency=["google/protobuf/wrappers.proto"])
    message = file.message_type.add(name="BatchingParameters")
    field = descriptor_pb2.FieldDescriptorProto
    for number, name, kind in ((1, "max_batch_size", "Int64Value"), (2, "batch_timeout_micros", "Int64Value"),
                               (3, "max_enqueued_batches", "Int64Value"), (4, "num_batch_threads", "Int64Value"),
                               (5, "thread_pool_name", "StringValue")):
        message.field.add(name=name, number=number, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL,
                          type_name=f".google.protobuf.{kind}")
    message.field.add(name="allowed_batch_sizes", number=6, type=field.TYPE_INT64, label=field.LABEL_REPEATED)
    message.field.add(name="pad_variable_length_inputs", number=7, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL)
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


class _Task:
    __slots__ = ("inputs", "size", "done", "outputs", "error")

    def __init__(self, inputs, size):
        self.inputs, self.size = inputs, size
        self.done = threading.Event()
        self.outputs = self.error = None


class _Batch:
    __slots__ = ("call", "tasks", "size", "deadline")

    def __init__(self, call, deadline):
        self.call, self.tasks, self.size, self.deadline = call, [], 0, deadline


class Batcher:
    """Queues and threads that run concurrent requests' batches; see the module docstring.

    Args:
        parameters: `BatchingParameters`.
    """

    def __init__(self, parameters):
        self.parameters = parameters
        self._cond = threading.Condition()
        self._queues = collections.defaultdict(collections.deque)  # key -> batches, the last one open
        self._stopped = False
        self._threads = [threading.Thread(target=self._work, name=f"tl-app-batch-{i}", daemon=True)
                         for i in range(parameters.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def run(self, call, key, inputs):
        """`call(inputs)` (name -> array with a batch dimension) run in a batch with other requests of `key`."""
        sizes = {len(value) for value in inputs.values()}
        if len(sizes) != 1:
            raise ServingError("INVALID_ARGUMENT", "Batching: every input must have the same size in dimension 0 "
                                                   f"(got {sorted(sizes)})")
        (size,) = sizes
        limit = self.parameters.max_batch_size
        if size > limit:
            raise ServingError("INVALID_ARGUMENT", f"Task size {size} is larger than maximum input batch size {limit}")
        task = _Task(inputs, size)
        key = (key, tuple((name, value.shape[1:], value.dtype.str) for name, value in sorted(inputs.items())))
        with self._cond:
            queue = self._queues[key]
            if not queue or queue[-1].size + size > limit:
                if len(queue) >= self.parameters.max_enqueued_batches:
                    raise ServingError("UNAVAILABLE", "The batch scheduling queue to which this task was submitted is "
                                                      "full")
                queue.append(_Batch(call, time.monotonic() + self.parameters.batch_timeout_micros / 1e6))
            queue[-1].tasks.append(task)
            queue[-1].size += size
            self._cond.notify()
        task.done.wait()
        if isinstance(task.error, ServingError):  # one exception per request thread
            raise ServingError(task.error.code, task.error.message) from None
        if task.error is not None:
            raise task.error
        return task.outputs

    def stop(self):
        """End the batch threads; requests still queued get UNAVAILABLE (none are, after a clean server stop)."""
        with self._cond:
            self._stopped = True
            waiting = [task for queue in self._queues.values() for batch in queue for task in batch.tasks]
            self._queues.clear()
            self._cond.notify_all()
        for task in waiting:
            task.error = ServingError("UNAVAILABLE", "the server is stopping")
            task.done.set()

    def _next_batch(self):
        """The oldest batch that is full, or has waited long enough; None when stopped. Called with the lock."""
        while not self._stopped:
            now, wake = time.monotonic(), None
            for key, queue in list(self._queues.items()):
                if not queue:
                    del self._queues[key]
                    continue
                batch = queue[0]
                if len(queue) > 1 or batch.size >= self.parameters.max_batch_size or batch.deadline <= now:
                    return queue.popleft()
                wake = batch.deadline if wake is None else min(wake, batch.deadline)
            self._cond.wait(None if wake is None else max(wake - now, 0))
        return None

    def _work(self):
        while True:
            with self._cond:
                batch = self._next_batch()
            if batch is None:
                return
            _run_batch(batch, self.parameters.allowed_batch_sizes)


def _run_batch(batch, allowed_sizes):
    tasks = batch.tasks
    try:
        if len(tasks) == 1 and not allowed_sizes:
            tasks[0].outputs = batch.call(tasks[0].inputs)
        else:
            inputs = {name: np.concatenate([task.inputs[name] for task in tasks]) for name in tasks[0].inputs}
            padded = next((s for s in allowed_sizes if s >= batch.size), batch.size)
            if padded > batch.size:  # repeat the last example: its rows are cut off again below
                inputs = {name: np.concatenate([value, np.repeat(value[-1:], padded - batch.size, axis=0)])
                          for name, value in inputs.items()}
            outputs = batch.call(inputs)
            for name, value in outputs.items():
                if np.ndim(value) == 0 or len(value) != padded:
                    raise ServingError("FAILED_PRECONDITION", f"Batching: output '{name}' has shape "
                                       f"{list(np.shape(value))}, not {padded} rows (one per example); this signature "
                                       "cannot be batched across requests: serve it without --enable-batching")
            start = 0
            for task in tasks:
                task.outputs = {name: value[start:start + task.size] for name, value in outputs.items()}
                start += task.size
    except Exception as exc:  # noqa: BLE001  (every request of the batch gets the error, as in TF Serving)
        for task in tasks:
            task.error = exc
    for task in tasks:
        task.done.set()
