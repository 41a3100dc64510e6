"""Client: the low-level Python client of inferd.

One gRPC channel with explicit message-size limits, a deadline on every
call, and retries with exponential backoff while the daemon answers
UNAVAILABLE (starting, restarting). Methods cover every service:

  health / KServe v2   health, server_live, server_ready, server_metadata,
                       list_models, model_metadata, model_ready, infer,
                       load_model, unload_model, model_statistics
  inferd.v1.Memory     allocate_tensor, upload_tensor, download_tensor,
                       free_tensor, renew_lease, get_tensor, list_tensors,
                       get_optimal_batch_size, get_memory_stats, compact
  inferd.v1.Scheduler  submit_task, submit_tasks, get_task, wait_task,
                       cancel_task, watch_tasks, list_tasks,
                       get_scheduler_stats
  inferd.v1.Communication
                       async_transfer, get_transfer, wait_transfer,
                       broadcast, all_reduce, all_gather, reduce_scatter,
                       get_communication_stats
  inferd.v1.Scaling    collect_workload_metrics, get_scaling_stats,
                       get_scaling_events, get_scaling_policy,
                       set_scaling_policy
  inferd.v1.Report     get_performance_report

Methods return the response messages (typed protobuf objects) except where
a Python value is the natural answer (infer -> {name: Tensor},
download_tensor -> Tensor, submit_task -> task id). Failures raise
InferdError carrying the canonical code and the daemon's message.

A Client is safe to use from several threads (gRPC channels and stubs are).
"""

import collections
import os
import time

import grpc

from inferd_client import _stubs
from inferd_client import convert
from inferd_client.tensors import Tensor, as_tensor, datatype_name, encode

DEFAULT_TARGET = "127.0.0.1:50051"
_UPLOAD_CHUNK_BYTES = 1 << 20

_kserve = _stubs.grpc_service_pb2
_mem = _stubs.memory_pb2
_sched = _stubs.scheduler_pb2
_comm = _stubs.communication_pb2
_scaling = _stubs.scaling_pb2
_report = _stubs.report_pb2
_common = _stubs.common_pb2
_health = _stubs.health_pb2


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                   grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call."""

    def __init__(self, token):
        self._header = ("authorization", "Bearer " + token)

    def _details(self, d):
        metadata = list(d.metadata or []) + [self._header]
        return _CallDetails(d.method, d.timeout, metadata, d.credentials,
                            getattr(d, "wait_for_ready", None), getattr(d, "compression", None))

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


class _CallDetails(collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready",
                         "compression")), grpc.ClientCallDetails):
    pass


class InferdError(Exception):
    """A failed call: `code` (grpc.StatusCode), `code_name` ("NOT_FOUND"),
    `message` (the daemon's text, which names the offending field)."""

    def __init__(self, code, message):
        self.code = code
        self.code_name = code.name if hasattr(code, "name") else str(code)
        self.message = message
        super(InferdError, self).__init__("%s: %s" % (self.code_name, message))

    @classmethod
    def from_rpc_error(cls, error):
        return cls(error.code(), error.details() or "")


class TaskOutputRef(object):
    """Names output `output` of task `task` (a task id, or the key of a task
    in the same submit_tasks call) as the input of another task."""

    __slots__ = ("task", "output")

    def __init__(self, task, output):
        self.task = task
        self.output = output


class Stream(object):
    """A server stream (watch_tasks): iterate it for messages; cancel() or
    leaving a `with` block ends it. Errors surface as InferdError; a
    cancelled stream simply stops."""

    def __init__(self, call, unwrap):
        self._call = call
        self._unwrap = unwrap
        self._cancelled = False

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self._unwrap(next(self._call))
        except grpc.RpcError as e:
            if self._cancelled or e.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise InferdError.from_rpc_error(e) from None

    next = __next__

    def cancel(self):
        self._cancelled = True
        self._call.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cancel()
        return False


def _infer_parameter(value):
    p = _kserve.InferParameter()
    if isinstance(value, bool):
        p.bool_param = value
    elif isinstance(value, int):
        p.int64_param = value
    elif isinstance(value, float):
        p.double_param = value
    else:
        p.string_param = str(value)
    return p


def _typed_contents(tensor_msg):
    """Raw bytes of a KServe tensor given in typed `contents`."""
    c = tensor_msg.contents
    dt = tensor_msg.datatype
    field = {
        "BOOL": c.bool_contents, "INT8": c.int_contents, "INT16": c.int_contents,
        "INT32": c.int_contents, "INT64": c.int64_contents, "UINT8": c.uint_contents,
        "UINT16": c.uint_contents, "UINT32": c.uint_contents, "UINT64": c.uint64_contents,
        "FP32": c.fp32_contents, "FP64": c.fp64_contents, "BYTES": c.bytes_contents,
    }.get(dt)
    return encode(list(field), dt) if field is not None else b""


def inline_tensor(value, name="", datatype=None):
    """Builds an inferd.v1.InlineTensor from a Tensor or a (nested) list."""
    t = as_tensor(value, datatype=datatype, name=name)
    return _common.InlineTensor(name=name or t.name, datatype=t.datatype, shape=t.shape,
                                data=t.data)


def tensor_from_inline(msg):
    return Tensor(msg.datatype, list(msg.shape), msg.data, msg.name)


def task_outputs(task):
    """The outputs of a SUCCEEDED Task message: {name: Tensor} for outputs
    returned inline, {name: tensor_id (str)} for outputs kept on device."""
    out = {}
    for o in task.outputs:
        if o.tensor_id:
            out[o.name] = o.tensor_id
        else:
            out[o.name] = Tensor(o.datatype, list(o.shape), o.data, o.name)
    return out


class Client(object):
    """Talks to one inferd daemon. See the module docstring for the methods.

    target: "host:port" (default 127.0.0.1:50051).
    timeout: seconds allowed per call (a deadline), unless a call says
        otherwise.
    max_message_bytes: the channel's send/receive limit (gRPC's default is
        4 MiB; tensors exceed it).
    max_attempts / initial_backoff: retries while the daemon answers
        UNAVAILABLE, doubling the pause each time.
    owner: the client id set on tensors and tasks this client creates (the
        daemon lists and reclaims by it); "" for none.
    token: sent as `authorization: Bearer <token>` with every call (a
        daemon with server.auth); None = $INFERD_TOKEN when set.
    tls / tls_ca / tls_cert / tls_key: TLS (on when `tls` or a file is set):
        tls_ca is a PEM file of the roots that sign the server's
        certificate (None: the system's), tls_cert/tls_key a client
        certificate for mutual TLS.
    """

    def __init__(self, target=DEFAULT_TARGET, timeout=30.0, max_message_bytes=64 << 20,
                 max_attempts=3, initial_backoff=0.1, owner="", token=None, tls=False,
                 tls_ca=None, tls_cert=None, tls_key=None):
        if timeout is None or timeout <= 0:
            raise ValueError("timeout: %r must be a positive number of seconds" % (timeout,))
        if max_attempts < 1:
            raise ValueError("max_attempts: %r must be >= 1" % (max_attempts,))
        self.target = target
        self.timeout = float(timeout)
        self.max_attempts = int(max_attempts)
        self.initial_backoff = float(initial_backoff)
        self.owner = owner or ""
        options = [
            ("grpc.max_send_message_length", int(max_message_bytes)),
            ("grpc.max_receive_message_length", int(max_message_bytes)),
        ]
        if tls or tls_ca or tls_cert or tls_key:
            def read(path):
                if not path:
                    return None
                with open(path, "rb") as f:
                    return f.read()
            creds = grpc.ssl_channel_credentials(read(tls_ca), read(tls_key), read(tls_cert))
            self._channel = grpc.secure_channel(target, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        if token is None:
            token = os.environ.get("INFERD_TOKEN") or None
        if token:
            self._channel = grpc.intercept_channel(self._channel, _BearerToken(token))
        self.kserve = _stubs.grpc_service_pb2_grpc.GRPCInferenceServiceStub(self._channel)
        self.memory = _stubs.memory_pb2_grpc.MemoryStub(self._channel)
        self.scheduler = _stubs.scheduler_pb2_grpc.SchedulerStub(self._channel)
        self.communication = _stubs.communication_pb2_grpc.CommunicationStub(self._channel)
        self.scaling = _stubs.scaling_pb2_grpc.ScalingStub(self._channel)
        self.report = _stubs.report_pb2_grpc.ReportStub(self._channel)
        self._health_check = self._channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=_health.HealthCheckRequest.SerializeToString,
            response_deserializer=_health.HealthCheckResponse.FromString)
        self._input_names = {}

    @property
    def channel(self):
        return self._channel

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- plumbing ---------------------------------------------------------

    def call(self, method, request, timeout=None):
        """Calls a unary stub method with a deadline, retrying on
        UNAVAILABLE. Raises InferdError."""
        return self._with_retries(lambda t: method(request, timeout=t), timeout)

    def _with_retries(self, fn, timeout=None):
        deadline = self.timeout if timeout is None else timeout
        backoff = self.initial_backoff
        attempt = 1
        while True:
            try:
                return fn(deadline)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or attempt >= self.max_attempts:
                    raise InferdError.from_rpc_error(e) from None
            time.sleep(backoff)  # retry backoff, not a poll
            backoff *= 2
            attempt += 1

    # -- health and KServe v2 ---------------------------------------------

    def health(self, service="inferd"):
        """True when `service` ("" = the server) is SERVING, False when
        NOT_SERVING. NOT_FOUND for an unknown service."""
        resp = self.call(self._health_check, _health.HealthCheckRequest(service=service))
        return resp.status == _health.HealthCheckResponse.SERVING

    def server_live(self):
        return self.call(self.kserve.ServerLive, _kserve.ServerLiveRequest()).live

    def server_ready(self):
        return self.call(self.kserve.ServerReady, _kserve.ServerReadyRequest()).ready

    def server_metadata(self):
        return self.call(self.kserve.ServerMetadata, _kserve.ServerMetadataRequest())

    def list_models(self, ready_only=False):
        """The repository index: a list of ModelIndex (name, version, state,
        reason)."""
        resp = self.call(self.kserve.RepositoryIndex, _kserve.RepositoryIndexRequest(ready=ready_only))
        return list(resp.models)

    def model_metadata(self, model, version=""):
        return self.call(self.kserve.ModelMetadata,
                         _kserve.ModelMetadataRequest(name=model, version=version))

    def model_ready(self, model, version=""):
        return self.call(self.kserve.ModelReady,
                         _kserve.ModelReadyRequest(name=model, version=version)).ready

    def model_statistics(self, model="", version=""):
        return self.call(self.kserve.ModelStatistics,
                         _kserve.ModelStatisticsRequest(name=model, version=version))

    def load_model(self, model):
        self.call(self.kserve.RepositoryModelLoad, _kserve.RepositoryModelLoadRequest(model_name=model))

    def unload_model(self, model):
        self.call(self.kserve.RepositoryModelUnload,
                  _kserve.RepositoryModelUnloadRequest(model_name=model))

    def _model_inputs(self, model):
        """[(name, datatype)] of the model's inputs, cached per model."""
        if model not in self._input_names:
            meta = self.model_metadata(model)
            self._input_names[model] = [(t.name, t.datatype) for t in meta.inputs]
        return self._input_names[model]

    def _named_inputs(self, model, inputs):
        """Normalizes `inputs` to [(name, value, declared datatype or None)]:
        a dict {name: value}, or a list/tuple of values in the model's input
        order (Tensors with names keep them)."""
        if isinstance(inputs, dict):
            declared = None
            result = []
            for name, value in inputs.items():
                dtype = None
                if not isinstance(value, (Tensor, str, TaskOutputRef)) and not _is_handle(value):
                    if declared is None:
                        declared = dict(self._model_inputs(model))
                    dtype = declared.get(name)
                result.append((name, value, dtype))
            return result
        if isinstance(inputs, (list, tuple)):
            if inputs and all(isinstance(v, Tensor) and v.name for v in inputs):
                return [(v.name, v, None) for v in inputs]
            declared = self._model_inputs(model)
            if len(inputs) != len(declared):
                raise ValueError("inputs: model '%s' takes %d inputs (%s), %d were given" % (
                    model, len(declared), ", ".join(n for n, _ in declared), len(inputs)))
            return [(n, v, dt) for (n, dt), v in zip(declared, inputs)]
        raise TypeError("inputs: expected a dict {name: value} or a list of values, got %s" %
                        type(inputs).__name__)

    def infer(self, model, inputs, outputs=None, parameters=None, version="", request_id=""):
        """Runs ModelInfer. `inputs`: {name: Tensor | nested list | numpy
        array} or a list in the model's input order; lists take the
        datatype the model declares. `parameters`: {key: bool|int|float|str}
        (e.g. {"priority": "HIGH"} or the scale model's {"factor": 3.0}).
        Returns {output name: Tensor} in response order."""
        req = _kserve.ModelInferRequest(model_name=model, model_version=version, id=request_id)
        for name, value, dtype in self._named_inputs(model, inputs):
            t = as_tensor(value, datatype=dtype, name=name)
            req.inputs.add(name=name, datatype=t.datatype, shape=t.shape)
            req.raw_input_contents.append(t.data)
        for name in outputs or ():
            req.outputs.add(name=name)
        for key, value in (parameters or {}).items():
            req.parameters[key].CopyFrom(_infer_parameter(value))
        resp = self.call(self.kserve.ModelInfer, req)
        return decode_infer_response(resp)

    def infer_request(self, request, timeout=None):
        """Sends a prepared ModelInferRequest; returns the response message."""
        return self.call(self.kserve.ModelInfer, request, timeout)

    # -- inferd.v1.Memory -----------------------------------------------

    def _alloc_request(self, datatype, shape, device, byte_size, owner, lease_seconds):
        req = _mem.AllocateTensorRequest(datatype=datatype_name(datatype), shape=shape,
                                         byte_size=byte_size,
                                         owner=self.owner if owner is None else owner,
                                         lease_seconds=lease_seconds)
        if device is not None:
            req.device = device
        return req

    def allocate_tensor(self, datatype, shape, device=None, byte_size=0, owner=None,
                        lease_seconds=0.0):
        """Allocates a zeroed tensor; device None = the one with the most
        free memory. `datatype`: a KServe name ("FP32"), a numpy / torch
        dtype or its name ("float32"). Returns its TensorInfo (info.id is
        the handle)."""
        return self.call(self.memory.AllocateTensor,
                         self._alloc_request(datatype, shape, device, byte_size, owner, lease_seconds))

    def upload_tensor(self, tensor, device=None, owner=None, lease_seconds=0.0,
                      chunk_bytes=_UPLOAD_CHUNK_BYTES, datatype=None):
        """Stores `tensor` (a Tensor, nested list or numpy array) on a device
        through the client-streaming UploadTensor, in chunks of chunk_bytes,
        so no message limit applies. Returns its TensorInfo."""
        t = as_tensor(tensor, datatype=datatype)
        if chunk_bytes <= 0:
            raise ValueError("chunk_bytes: %r must be positive" % (chunk_bytes,))
        header = self._alloc_request(t.datatype, t.shape, device,
                                     len(t.data) if t.datatype == "BYTES" else 0, owner,
                                     lease_seconds)

        def parts():
            yield _mem.UploadTensorRequest(header=header)
            view = memoryview(t.data)
            for off in range(0, len(view), chunk_bytes):
                yield _mem.UploadTensorRequest(chunk=bytes(view[off:off + chunk_bytes]))

        return self._with_retries(lambda d: self.memory.UploadTensor(parts(), timeout=d))

    def download_tensor(self, tensor_id, chunk_bytes=0, timeout=None):
        """Reads a stored tensor through the server-streaming DownloadTensor.
        Returns a Tensor (its name is the handle)."""
        req = _mem.DownloadTensorRequest(tensor_id=tensor_id, chunk_bytes=chunk_bytes)

        def fetch(deadline):
            info, buf = None, bytearray()
            for msg in self.memory.DownloadTensor(req, timeout=deadline):
                if info is None:
                    info = msg.info
                if msg.offset != len(buf):
                    raise InferdError(grpc.StatusCode.DATA_LOSS,
                                      "download %s: chunk at offset %d, expected %d" % (
                                          tensor_id, msg.offset, len(buf)))
                buf += msg.chunk
            if info is None:
                raise InferdError(grpc.StatusCode.DATA_LOSS, "download %s: empty stream" % tensor_id)
            return Tensor(info.datatype, list(info.shape), bytes(buf), tensor_id)

        return self._with_retries(fetch, timeout)

    def free_tensor(self, tensor_id):
        self.call(self.memory.FreeTensor, _mem.FreeTensorRequest(tensor_id=tensor_id))

    def renew_lease(self, tensor_id, lease_seconds=0.0):
        return self.call(self.memory.RenewLease,
                         _mem.RenewLeaseRequest(tensor_id=tensor_id, lease_seconds=lease_seconds))

    def get_tensor(self, tensor_id):
        return self.call(self.memory.GetTensor, _mem.GetTensorRequest(tensor_id=tensor_id))

    def list_tensors(self, owner="", device=None, page_size=0, limit=None):
        """Every stored tensor matching the filters (all pages, at most
        `limit`), as TensorInfo messages."""
        out, token = [], ""
        while True:
            req = _mem.ListTensorsRequest(owner=owner, page_size=page_size, page_token=token)
            if device is not None:
                req.device = device
            resp = self.call(self.memory.ListTensors, req)
            out.extend(resp.tensors)
            token = resp.next_page_token
            if not token or (limit is not None and len(out) >= limit):
                return out[:limit] if limit is not None else out

    def get_optimal_batch_size(self, device, model_size_mb, input_shape, datatype="FP32",
                               output_bytes_per_sample=0, activation_bytes_per_sample=0,
                               max_batch_size=0):
        """The largest batch that fits `device`'s free memory (after GC)
        with the model, inputs, outputs and activations, with a margin."""
        req = _mem.GetOptimalBatchSizeRequest(
            device=device, model_size_mb=model_size_mb, input_shape=list(input_shape),
            datatype=datatype_name(datatype), output_bytes_per_sample=output_bytes_per_sample,
            activation_bytes_per_sample=activation_bytes_per_sample, max_batch_size=max_batch_size)
        return self.call(self.memory.GetOptimalBatchSize, req).batch_size

    def get_memory_stats(self):
        return self.call(self.memory.GetMemoryStats, _mem.GetMemoryStatsRequest())

    def compact(self, device):
        return self.call(self.memory.Compact, _mem.CompactRequest(device=device))

    # -- inferd.v1.Scheduler ----------------------------------------------

    def _task_input(self, name, value, dtype):
        if isinstance(value, TaskOutputRef):
            return _sched.TaskInput(name=name, task_output=_sched.TaskOutputRef(
                task=value.task, output=value.output))
        if isinstance(value, str):
            return _sched.TaskInput(name=name, tensor_id=value)
        if _is_handle(value):
            return _sched.TaskInput(name=name, tensor_id=_handle_id(value))
        return _sched.TaskInput(name=name, tensor=inline_tensor(value, name, dtype))

    def task_spec(self, model, inputs, priority=None, depends_on=(), memory_requirement_bytes=0,
                  device=None, timeout_seconds=0.0, max_retries=None,
                  keep_outputs_on_device=False, requested_outputs=(), parameters=None, key="",
                  version="", owner=None):
        """Builds a TaskSpec. Each input value is a Tensor / nested list /
        numpy array (sent inline), a tensor handle (str, or a TensorInfo or
        dict with an id), or a TaskOutputRef. `inputs` may be a dict or a
        list in the model's input order."""
        spec = _sched.TaskSpec(
            key=key, model_name=model, model_version=version,
            requested_outputs=list(requested_outputs), priority=convert.priority_value(priority),
            depends_on=list(depends_on), memory_requirement_bytes=int(memory_requirement_bytes),
            timeout_seconds=float(timeout_seconds),
            keep_outputs_on_device=bool(keep_outputs_on_device),
            owner=self.owner if owner is None else owner)
        for name, value, dtype in self._named_inputs(model, inputs):
            spec.inputs.append(self._task_input(name, value, dtype))
        if device is not None:
            spec.device = device
        if max_retries is not None:
            spec.max_retries = max_retries
        for k, v in (parameters or {}).items():
            spec.parameters[k] = float(v)
        return spec

    def submit_task(self, model, inputs, **kwargs):
        """Submits one task (keyword arguments as task_spec); returns its id."""
        spec = self.task_spec(model, inputs, **kwargs)
        return self.call(self.scheduler.SubmitTask, _sched.SubmitTaskRequest(task=spec)).task_id

    def submit_tasks(self, specs):
        """Submits TaskSpecs (from task_spec) that may depend on each other
        by key, all or none. Returns their ids in order."""
        resp = self.call(self.scheduler.SubmitTasks, _sched.SubmitTasksRequest(tasks=list(specs)))
        return list(resp.task_ids)

    def get_task(self, task_id, omit_outputs=False):
        return self.call(self.scheduler.GetTask,
                         _sched.GetTaskRequest(task_id=task_id, omit_outputs=omit_outputs)).task

    def wait_task(self, task_id, timeout=None, omit_outputs=False):
        """Waits up to `timeout` seconds (None: the client's timeout) for the
        task to finish. Returns the WaitTaskResponse (.task, .finished)."""
        wait = self.timeout if timeout is None else float(timeout)
        req = _sched.WaitTaskRequest(task_id=task_id, timeout_seconds=wait,
                                     omit_outputs=omit_outputs)
        return self.call(self.scheduler.WaitTask, req, timeout=wait + self.timeout)

    def cancel_task(self, task_id):
        return self.call(self.scheduler.CancelTask, _sched.CancelTaskRequest(task_id=task_id)).task

    def watch_tasks(self, task_ids=(), model_name="", timeout=None):
        """Streams TaskEvents (state changes) of the given tasks, or of every
        task. Returns a Stream; cancel it to stop. `timeout` bounds the
        whole stream (None: no deadline)."""
        req = _sched.WatchTasksRequest(task_ids=list(task_ids), model_name=model_name)
        call = self.scheduler.WatchTasks(req, timeout=timeout)
        return Stream(call, lambda resp: resp.event)

    def list_tasks(self, state=None, model_name="", owner="", page_size=0, limit=None):
        """Retained tasks (without outputs) matching the filters, all pages
        (at most `limit`)."""
        out, token = [], ""
        while True:
            req = _sched.ListTasksRequest(page_size=page_size, page_token=token,
                                          state=convert.task_state_value(state),
                                          model_name=model_name, owner=owner)
            resp = self.call(self.scheduler.ListTasks, req)
            out.extend(resp.tasks)
            token = resp.next_page_token
            if not token or (limit is not None and len(out) >= limit):
                return out[:limit] if limit is not None else out

    def get_scheduler_stats(self):
        return self.call(self.scheduler.GetSchedulerStats, _sched.GetSchedulerStatsRequest())

    # -- inferd.v1.Communication ------------------------------------------

    def async_transfer(self, source, dst_device=0, to_host=False, priority=None, move=False,
                       owner="", lease_ms=0):
        """Queues a copy and returns its transfer id at once. `source`: a
        stored tensor (handle str, TensorInfo or dict with an id) or data
        (Tensor / nested list, sent inline from the host)."""
        req = _comm.AsyncTransferRequest(dst_device=dst_device, to_host=to_host,
                                         priority=convert.priority_value(priority), move=move,
                                         owner=owner, lease_ms=int(lease_ms))
        if isinstance(source, str) or _is_handle(source):
            req.tensor_id = source if isinstance(source, str) else _handle_id(source)
        else:
            req.inline_tensor.CopyFrom(inline_tensor(source))
        return self.call(self.communication.AsyncTransfer, req).transfer_id

    def get_transfer(self, transfer_id):
        return self.call(self.communication.GetTransfer,
                         _comm.GetTransferRequest(transfer_id=transfer_id))

    def wait_transfer(self, transfer_id, timeout=None):
        """Waits up to `timeout` seconds (None: the client's timeout) for the
        transfer to end; returns the Transfer (check .state)."""
        wait = self.timeout if timeout is None else float(timeout)
        req = _comm.WaitTransferRequest(transfer_id=transfer_id, timeout_ms=int(wait * 1000))
        return self.call(self.communication.WaitTransfer, req, timeout=wait + self.timeout)

    def broadcast(self, tensor_ids, root=0):
        return self.call(self.communication.Broadcast,
                         _comm.BroadcastRequest(tensor_ids=_ids(tensor_ids), root=root))

    def all_reduce(self, tensor_ids, op="SUM"):
        return self.call(self.communication.AllReduce, _comm.AllReduceRequest(
            tensor_ids=_ids(tensor_ids), op=convert.reduce_op_value(op)))

    def all_gather(self, tensor_ids, lease_ms=0):
        return self.call(self.communication.AllGather,
                         _comm.AllGatherRequest(tensor_ids=_ids(tensor_ids), lease_ms=lease_ms))

    def reduce_scatter(self, tensor_ids, op="SUM", lease_ms=0):
        return self.call(self.communication.ReduceScatter, _comm.ReduceScatterRequest(
            tensor_ids=_ids(tensor_ids), op=convert.reduce_op_value(op), lease_ms=lease_ms))

    def get_communication_stats(self):
        return self.call(self.communication.GetCommunicationStats,
                         _comm.GetCommunicationStatsRequest())

    # -- inferd.v1.Scaling ------------------------------------------------

    def collect_workload_metrics(self, queue_length, processing_time, throughput):
        self.call(self.scaling.CollectWorkloadMetrics, _scaling.CollectWorkloadMetricsRequest(
            queue_length=queue_length, processing_time=processing_time, throughput=throughput))

    def get_scaling_stats(self):
        return self.call(self.scaling.GetScalingStats, _scaling.GetScalingStatsRequest())

    def get_scaling_events(self, limit=0):
        return list(self.call(self.scaling.GetScalingEvents,
                              _scaling.GetScalingEventsRequest(limit=limit)).events)

    def get_scaling_policy(self):
        return self.call(self.scaling.GetScalingPolicy, _scaling.GetScalingPolicyRequest()).policy

    def set_scaling_policy(self, policy):
        """Replaces the whole policy (read, change, send back); returns the
        policy in force."""
        return self.call(self.scaling.SetScalingPolicy,
                         _scaling.SetScalingPolicyRequest(policy=policy)).policy

    # -- inferd.v1.Report -------------------------------------------------

    def get_performance_report(self):
        return self.call(self.report.GetPerformanceReport, _report.GetPerformanceReportRequest())


def decode_infer_response(resp):
    """{output name: Tensor} from a ModelInferResponse (raw or typed)."""
    out = {}
    for i, o in enumerate(resp.outputs):
        if i < len(resp.raw_output_contents):
            data = resp.raw_output_contents[i]
        else:
            data = _typed_contents(o)
        out[o.name] = Tensor(o.datatype, list(o.shape), data, o.name)
    return out


def _is_handle(value):
    return (isinstance(value, dict) and ("tensor_id" in value or "id" in value)) or (
        hasattr(value, "DESCRIPTOR") and value.DESCRIPTOR.full_name == "inferd.v1.TensorInfo")


def _handle_id(value):
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return value.get("tensor_id") or value.get("id")
    if _is_handle(value):
        return value.id
    raise TypeError("tensor: expected a tensor handle (str, TensorInfo or dict with 'tensor_id'),"
                    " got %s" % type(value).__name__)


def _ids(tensors):
    return [_handle_id(t) for t in tensors]


__all__ = ["Client", "InferdError", "Stream", "TaskOutputRef", "DEFAULT_TARGET",
           "decode_infer_response", "inline_tensor", "task_outputs", "tensor_from_inline"]
