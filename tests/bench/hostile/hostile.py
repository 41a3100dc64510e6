#!/usr/bin/env python3
"""Soak and hostile-input campaign against a spawned inferd (host devices).

Drives every RPC family (KServe v2 inference, health, inferd.v1 Memory,
Communication, Scheduler, Scaling, Report) concurrently with well-formed
traffic, well-formed hostile requests (oversized names, bad datatypes and
shapes, malformed BYTES, unknown ids, cycles, extreme numbers) and fuzzed
wire bytes (valid requests with bytes flipped, inserted or cut) for a given
duration, then:
  - frees every tensor the campaign left and compacts both devices,
  - reports RSS at start / after the campaign / after freeing, streams
    opened and still open, calls by gRPC code (client side) and the
    daemon's own inferd_grpc_requests_total by code,
  - sends SIGTERM while 32 ModelInfer calls are in flight and checks that
    every one is answered OK and the daemon exits 0.
Exit status 0 when the acceptance holds: the daemon alive throughout, no
INTERNAL or UNKNOWN, RSS after freeing within --rss-tolerance of the start,
a clean SIGTERM. Not part of ctest (it runs for minutes); see
docs/PERFORMANCE.md for the command and a result.

  python3 tests/bench/hostile/hostile.py --inferd build/bin/inferd \
      --stubs build/python --seconds 600 --workers 8
(Debian's /usr/bin/python3 with python3-grpcio.)
"""

import argparse
import collections
import os
import random
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.request


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--inferd", required=True, help="the daemon binary")
    p.add_argument("--stubs", required=True, help="<build>/python (generated stubs)")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--seed", type=int, default=1, help="random-number seed")
    p.add_argument("--daemon-arg", action="append", default=[],
                   help="extra daemon argument, e.g. --daemon-arg=--config=my.yaml")
    p.add_argument("--rss-tolerance", type=float, default=0.10)
    p.add_argument("--warmup-seconds", type=float, default=30,
                   help="the same mix before the start figure, so gRPC's thread pools, "
                        "allocator arenas and bounded caches have their working size")
    p.add_argument("--settle-seconds", type=float, default=8,
                   help="wait after freeing before reading RSS (maintenance passes)")
    return p.parse_args()


ARGS = parse_args()
sys.path.insert(0, ARGS.stubs)
import grpc  # noqa: E402
from inference import grpc_service_pb2 as kpb  # noqa: E402
from inferd.v1 import common_pb2 as cpb  # noqa: E402
from inferd.v1 import communication_pb2 as mpb_comm  # noqa: E402
from inferd.v1 import memory_pb2 as mpb  # noqa: E402
from inferd.v1 import report_pb2 as rpb  # noqa: E402
from inferd.v1 import scaling_pb2 as spb  # noqa: E402
from inferd.v1 import scheduler_pb2 as tpb  # noqa: E402

KSERVE = "/inference.GRPCInferenceService/"
MEMORY = "/inferd.v1.Memory/"
COMM = "/inferd.v1.Communication/"
SCHED = "/inferd.v1.Scheduler/"
SCALING = "/inferd.v1.Scaling/"
REPORT = "/inferd.v1.Report/"
HEALTH = "/grpc.health.v1.Health/"
OWNER = "hostile"


# ---------------------------------------------------------------- daemon

class Daemon(object):
    def __init__(self, binary):
        self.proc = subprocess.Popen(
            [binary, "--grpc-listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
             "--host-devices=2"] + ARGS.daemon_arg, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(120) or self.proc.poll() is not None:
            raise SystemExit("inferd did not start:\n" + "".join(self.lines))
        log = "".join(self.lines)
        self.port = int(re.search(r"gRPC listening on \S+ \(port (\d+)\)", log).group(1))
        m = re.search(r"metrics on \S+ \(port (\d+)\)", log)
        self.metrics_port = int(m.group(1)) if m else 0
        self.target = "127.0.0.1:%d" % self.port

    def _read(self):
        for line in self.proc.stdout:
            if len(self.lines) < 20000:
                self.lines.append(line)
            if "inferd: serving:" in line:
                self.ready.set()
        self.ready.set()

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def metrics(self):
        if not self.metrics_port:
            return ""
        url = "http://127.0.0.1:%d/metrics" % self.metrics_port
        return urllib.request.urlopen(url, timeout=10).read().decode()


# ---------------------------------------------------------------- requests

def raw_f32(values):
    return struct.pack("<%df" % len(values), *values)


def bytes_elems(elems):
    return b"".join(struct.pack("<I", len(e)) + e for e in elems)


class Campaign(object):
    def __init__(self, daemon):
        self.d = daemon
        opts = [("grpc.max_receive_message_length", 64 << 20),
                ("grpc.max_send_message_length", 64 << 20)]
        self.channels = [grpc.insecure_channel(daemon.target, options=opts) for _ in range(4)]
        self.lock = threading.Lock()
        self.codes = collections.Counter()           # (family, code)
        self.bad = []                                # INTERNAL / UNKNOWN samples
        self.calls = 0
        self.fuzzed = 0
        self.hostile = 0
        self.valid = 0
        self.streams_opened = 0
        self.streams_open = 0
        self.tensor_ids = collections.deque(maxlen=256)
        self.task_ids = collections.deque(maxlen=256)
        self.transfer_ids = collections.deque(maxlen=256)
        self.stop = threading.Event()

    # One call through a generic stub: raw bytes in, raw bytes out.
    def call(self, rng, path, kind, payload, family, klass, timeout=10.0):
        ch = rng.choice(self.channels)
        ident = (lambda b: b)
        code = "OK"
        responses = []
        try:
            if kind == "uu":
                responses = [ch.unary_unary(path, ident, ident)(payload, timeout=timeout)]
            elif kind == "us":
                with self.lock:
                    self.streams_opened += 1
                    self.streams_open += 1
                try:
                    it = ch.unary_stream(path, ident, ident)(payload, timeout=timeout)
                    for i, r in enumerate(it):
                        responses.append(r)
                        if i >= 3:
                            it.cancel()
                            break
                finally:
                    with self.lock:
                        self.streams_open -= 1
            elif kind == "su":
                msgs = payload if isinstance(payload, list) else [payload]
                responses = [ch.stream_unary(path, ident, ident)(iter(msgs), timeout=timeout)]
            else:  # bidi
                msgs = payload if isinstance(payload, list) else [payload]
                with self.lock:
                    self.streams_opened += 1
                    self.streams_open += 1
                try:
                    it = ch.stream_stream(path, ident, ident)(iter(msgs), timeout=timeout)
                    for r in it:
                        responses.append(r)
                finally:
                    with self.lock:
                        self.streams_open -= 1
        except grpc.RpcError as e:
            c = e.code()
            code = c.name if c is not None else "UNKNOWN"
            if code == "CANCELLED" and kind == "us":
                code = "OK"  # we cancelled after a few messages
            elif code in ("INTERNAL", "UNKNOWN"):
                with self.lock:
                    if len(self.bad) < 50:
                        self.bad.append((path, klass, code, e.details()[:300]))
        with self.lock:
            self.calls += 1
            setattr(self, klass, getattr(self, klass) + 1)
            self.codes[(family, code)] += 1
        return code, responses

    # -- well-formed traffic ------------------------------------------------
    def valid_op(self, rng):
        op = rng.randrange(12)
        if op == 0:
            n = rng.choice([4, 1024, 1 << 20, 4 << 20])
            req = mpb.AllocateTensorRequest(datatype="UINT8", shape=[n], owner=OWNER,
                                            lease_seconds=rng.choice([0, 5, 60]))
            if rng.random() < 0.7:
                req.device = rng.randrange(2)
            code, rs = self.call(rng, MEMORY + "AllocateTensor", "uu", req.SerializeToString(),
                                 "memory", "valid")
            if code == "OK":
                info = cpb.TensorInfo.FromString(rs[0])
                self.tensor_ids.append(info.id)
        elif op == 1 and self.tensor_ids:
            tid = self.tensor_ids.popleft()
            self.call(rng, MEMORY + "FreeTensor", "uu",
                      mpb.FreeTensorRequest(tensor_id=tid).SerializeToString(), "memory", "valid")
        elif op == 2:
            data = os.urandom(rng.choice([16, 4096, 300000]))
            hdr = mpb.AllocateTensorRequest(datatype="UINT8", shape=[len(data)], owner=OWNER,
                                            device=rng.randrange(2))
            msgs = [mpb.UploadTensorRequest(header=hdr).SerializeToString()]
            for i in range(0, len(data), 65536):
                msgs.append(mpb.UploadTensorRequest(chunk=data[i:i + 65536]).SerializeToString())
            code, rs = self.call(rng, MEMORY + "UploadTensor", "su", msgs, "memory", "valid")
            if code == "OK":
                self.tensor_ids.append(cpb.TensorInfo.FromString(rs[0]).id)
        elif op == 3 and self.tensor_ids:
            tid = rng.choice(self.tensor_ids)
            self.call(rng, MEMORY + "DownloadTensor", "us",
                      mpb.DownloadTensorRequest(tensor_id=tid, chunk_bytes=65536).SerializeToString(),
                      "memory", "valid")
        elif op == 4:
            n = rng.choice([2, 256, 65536, 1 << 20])
            req = kpb.ModelInferRequest(model_name=rng.choice(["identity", "scale"]))
            t = req.inputs.add(name="INPUT0", datatype="FP32", shape=[n])
            del t
            req.raw_input_contents.append(bytes(4 * n))
            self.call(rng, KSERVE + "ModelInfer", "uu", req.SerializeToString(), "kserve", "valid")
        elif op == 5:
            msgs = []
            for i in range(rng.randrange(1, 6)):
                req = kpb.ModelInferRequest(model_name="add", id=str(i))
                for name in ("INPUT0", "INPUT1"):
                    req.inputs.add(name=name, datatype="INT32", shape=[1, 16])
                    req.raw_input_contents.append(bytes(64))
                msgs.append(req.SerializeToString())
            self.call(rng, KSERVE + "ModelStreamInfer", "bidi", msgs, "kserve", "valid")
        elif op == 6:
            spec = tpb.TaskSpec(model_name="identity", owner=OWNER,
                                keep_outputs_on_device=rng.random() < 0.3)
            spec.inputs.add(name="INPUT0", tensor=cpb.InlineTensor(
                datatype="FP32", shape=[4], data=raw_f32([1, 2, 3, 4])))
            code, rs = self.call(rng, SCHED + "SubmitTask", "uu",
                                 tpb.SubmitTaskRequest(task=spec).SerializeToString(),
                                 "scheduler", "valid")
            if code == "OK":
                tid = tpb.SubmitTaskResponse.FromString(rs[0]).task_id
                self.call(rng, SCHED + "WaitTask", "uu",
                          tpb.WaitTaskRequest(task_id=tid, timeout_seconds=5).SerializeToString(),
                          "scheduler", "valid")
                self.task_ids.append(tid)
        elif op == 7:
            src = rng.randrange(2)
            req = mpb_comm.AsyncTransferRequest(
                inline_tensor=cpb.InlineTensor(datatype="UINT8", shape=[4096], data=bytes(4096)),
                dst_device=src, owner=OWNER, lease_ms=60000)
            code, rs = self.call(rng, COMM + "AsyncTransfer", "uu", req.SerializeToString(),
                                 "communication", "valid")
            if code == "OK":
                xid = mpb_comm.AsyncTransferResponse.FromString(rs[0]).transfer_id
                code, rs = self.call(rng, COMM + "WaitTransfer", "uu",
                                     mpb_comm.WaitTransferRequest(transfer_id=xid, timeout_ms=5000)
                                     .SerializeToString(), "communication", "valid")
                if code == "OK":
                    t = mpb_comm.Transfer.FromString(rs[0])
                    if t.result.id:
                        self.tensor_ids.append(t.result.id)
        elif op == 8:
            path, req, fam = rng.choice([
                (MEMORY + "GetMemoryStats", mpb.GetMemoryStatsRequest(), "memory"),
                (COMM + "GetCommunicationStats", mpb_comm.GetCommunicationStatsRequest(), "communication"),
                (SCHED + "GetSchedulerStats", tpb.GetSchedulerStatsRequest(), "scheduler"),
                (SCALING + "GetScalingStats", spb.GetScalingStatsRequest(), "scaling"),
                (SCALING + "GetScalingPolicy", spb.GetScalingPolicyRequest(), "scaling"),
                (SCALING + "GetScalingEvents", spb.GetScalingEventsRequest(), "scaling"),
                (REPORT + "GetPerformanceReport", rpb.GetPerformanceReportRequest(), "report"),
                (KSERVE + "ModelStatistics", kpb.ModelStatisticsRequest(), "kserve"),
                (KSERVE + "RepositoryIndex", kpb.RepositoryIndexRequest(), "kserve"),
                (KSERVE + "ServerMetadata", kpb.ServerMetadataRequest(), "kserve"),
                (KSERVE + "ModelMetadata", kpb.ModelMetadataRequest(name="add"), "kserve"),
                (KSERVE + "ModelConfig", kpb.ModelConfigRequest(name="simple"), "kserve"),
                (KSERVE + "ServerLive", kpb.ServerLiveRequest(), "kserve"),
                (KSERVE + "SystemSharedMemoryStatus", kpb.SystemSharedMemoryStatusRequest(), "kserve"),
                (MEMORY + "ListTensors", mpb.ListTensorsRequest(owner=OWNER, page_size=50), "memory"),
                (SCHED + "ListTasks", tpb.ListTasksRequest(), "scheduler"),
            ])
            self.call(rng, path, "uu", req.SerializeToString(), fam, "valid")
        elif op == 9:
            self.call(rng, MEMORY + "Compact", "uu",
                      mpb.CompactRequest(device=rng.randrange(2)).SerializeToString(),
                      "memory", "valid")
        elif op == 10:
            self.call(rng, SCHED + "WatchTasks", "us", tpb.WatchTasksRequest().SerializeToString(),
                      "scheduler", "valid", timeout=0.5)
        else:
            self.call(rng, SCALING + "CollectWorkloadMetrics", "uu",
                      spb.CollectWorkloadMetricsRequest(queue_length=rng.random() * 10,
                                                        processing_time=0.01,
                                                        throughput=100).SerializeToString(),
                      "scaling", "valid")

    # -- well-formed but hostile ------------------------------------------
    def hostile_op(self, rng):
        big = "n" * rng.choice([300, 9000, 70000])
        op = rng.randrange(14)
        if op == 0:
            self.call(rng, KSERVE + "ModelReady", "uu",
                      kpb.ModelReadyRequest(name=big, version=big).SerializeToString(),
                      "kserve", "hostile")
        elif op == 1:
            req = kpb.ModelInferRequest(model_name="identity")
            req.inputs.add(name="INPUT0", datatype=rng.choice(["FP32", "BYTES", "XX" + big, ""]),
                           shape=rng.choice([[-1], [1 << 40], [2] * 65, [3], []]))
            req.raw_input_contents.append(rng.choice([b"", b"\xff\xff\xff\xff", bytes(12)]))
            self.call(rng, KSERVE + "ModelInfer", "uu", req.SerializeToString(), "kserve", "hostile")
        elif op == 2:
            req = mpb.AllocateTensorRequest(
                datatype=rng.choice(["UINT8", "BYTES", "FP16", big]),
                shape=rng.choice([[1 << 62], [-5], [1] * 65, [2, 3]]),
                byte_size=rng.choice([0, 1 << 63, 7]), device=rng.choice([-1, 2, 1 << 30, 0]),
                lease_seconds=rng.choice([-1.0, 1e308, float("nan"), 1.0]), owner=big)
            self.call(rng, MEMORY + "AllocateTensor", "uu", req.SerializeToString(),
                      "memory", "hostile")
        elif op == 3:
            hdr = mpb.AllocateTensorRequest(datatype="BYTES", shape=[1], byte_size=8, device=0,
                                            owner=OWNER)
            msgs = [mpb.UploadTensorRequest(header=hdr).SerializeToString(),
                    mpb.UploadTensorRequest(chunk=struct.pack("<I", 64000000) + b"abcd")
                    .SerializeToString()]
            if rng.random() < 0.5:
                msgs.append(mpb.UploadTensorRequest(header=hdr).SerializeToString())
            code, rs = self.call(rng, MEMORY + "UploadTensor", "su", msgs, "memory", "hostile")
            if code == "OK":
                self.tensor_ids.append(cpb.TensorInfo.FromString(rs[0]).id)
        elif op == 4:
            tid = rng.choice(["", "0" * 32, "zz", big, "f" * 32])
            path = rng.choice(["FreeTensor", "GetTensor", "RenewLease"])
            klass = {"FreeTensor": mpb.FreeTensorRequest, "GetTensor": mpb.GetTensorRequest,
                     "RenewLease": mpb.RenewLeaseRequest}[path]
            self.call(rng, MEMORY + path, "uu", klass(tensor_id=tid).SerializeToString(),
                      "memory", "hostile")
        elif op == 5:
            n = rng.choice([2, 50, 1000])
            tasks = []
            for i in range(n):
                s = tpb.TaskSpec(key="k%d" % i, model_name="identity", owner=OWNER)
                s.inputs.add(name="INPUT0", tensor=cpb.InlineTensor(datatype="FP32", shape=[1],
                                                                     data=raw_f32([i])))
                s.depends_on.append("k%d" % ((i + 1) % n))  # a cycle
                tasks.append(s)
            self.call(rng, SCHED + "SubmitTasks", "uu",
                      tpb.SubmitTasksRequest(tasks=tasks).SerializeToString(), "scheduler", "hostile")
        elif op == 6:
            s = tpb.TaskSpec(model_name=rng.choice(["identity", big, "add"]), owner=OWNER,
                             timeout_seconds=rng.choice([-1, 1e300, float("inf"), 0.001]),
                             max_retries=rng.choice([-1, 1 << 30, 0]),
                             device=rng.choice([-1, 7, 0]))
            s.inputs.add(name="INPUT0", tensor=cpb.InlineTensor(
                datatype=rng.choice(["BYTES", "FP32"]), shape=[1], data=b"\xff\xff\xff\xff"))
            s.depends_on.append(rng.choice(["nope", "0" * 32, big]))
            self.call(rng, SCHED + "SubmitTask", "uu",
                      tpb.SubmitTaskRequest(task=s).SerializeToString(), "scheduler", "hostile")
        elif op == 7:
            req = mpb_comm.AsyncTransferRequest(
                inline_tensor=cpb.InlineTensor(datatype=rng.choice(["BYTES", "UINT8"]),
                                               shape=[1], data=b"\xff\xff\xff\xff"),
                dst_device=rng.choice([-1, 5, -7]), to_host=rng.random() < 0.5,
                lease_ms=rng.choice([-1, 1 << 62]))
            self.call(rng, COMM + "AsyncTransfer", "uu", req.SerializeToString(),
                      "communication", "hostile")
        elif op == 8:
            self.call(rng, COMM + "WaitTransfer", "uu",
                      mpb_comm.WaitTransferRequest(transfer_id=rng.choice([big, "1", ""]),
                                                   timeout_ms=rng.choice([-5, 1 << 62, 10]))
                      .SerializeToString(), "communication", "hostile")
        elif op == 9:
            pol = spb.ScalingPolicy(enabled=True, evaluation_interval_seconds=rng.choice(
                [1e-9, -1, float("nan"), 1e308]), min_active_devices=rng.choice([0, -1, 99]),
                max_replicas=rng.choice([0, 1 << 30]), window_length_seconds=-3)
            self.call(rng, SCALING + "SetScalingPolicy", "uu",
                      spb.SetScalingPolicyRequest(policy=pol).SerializeToString(),
                      "scaling", "hostile")
        elif op == 10:
            req = mpb.GetOptimalBatchSizeRequest(
                device=rng.choice([0, 1, 9, -1]), model_size_mb=rng.choice([1e300, -1, 0, 1e15]),
                input_shape=rng.choice([[1 << 62, 4], [-1], [3, 224, 224]]),
                datatype=rng.choice(["FP32", "BYTES", big]),
                output_bytes_per_sample=rng.choice([0, (1 << 64) - 1]),
                max_batch_size=rng.choice([-1, 0, 1 << 62]))
            self.call(rng, MEMORY + "GetOptimalBatchSize", "uu", req.SerializeToString(),
                      "memory", "hostile")
        elif op == 11:
            req = kpb.SystemSharedMemoryRegisterRequest(name=big, key="/nonexistent" + big[:50],
                                                        offset=1 << 62, byte_size=1 << 62)
            self.call(rng, KSERVE + "SystemSharedMemoryRegister", "uu", req.SerializeToString(),
                      "kserve", "hostile")
        elif op == 12:
            req = kpb.RepositoryModelLoadRequest(model_name=rng.choice([big, "../../etc", "simple"]))
            self.call(rng, KSERVE + "RepositoryModelLoad", "uu", req.SerializeToString(),
                      "kserve", "hostile")
        else:
            self.call(rng, MEMORY + "ListTensors", "uu",
                      mpb.ListTensorsRequest(page_size=rng.choice([-1, 1 << 30]),
                                             page_token=rng.choice(["garbage", big]))
                      .SerializeToString(), "memory", "hostile")

    # -- fuzzed wire bytes --------------------------------------------------
    FUZZ_METHODS = [
        (KSERVE + "ModelInfer", "uu", "kserve"), (KSERVE + "ModelReady", "uu", "kserve"),
        (KSERVE + "ModelMetadata", "uu", "kserve"), (KSERVE + "ModelConfig", "uu", "kserve"),
        (KSERVE + "ModelStatistics", "uu", "kserve"), (KSERVE + "ModelStreamInfer", "bidi", "kserve"),
        (KSERVE + "RepositoryModelUnload", "uu", "kserve"),
        (KSERVE + "SystemSharedMemoryRegister", "uu", "kserve"),
        (KSERVE + "CudaSharedMemoryRegister", "uu", "kserve"),
        (KSERVE + "TraceSetting", "uu", "kserve"), (KSERVE + "LogSettings", "uu", "kserve"),
        (MEMORY + "AllocateTensor", "uu", "memory"), (MEMORY + "UploadTensor", "su", "memory"),
        (MEMORY + "DownloadTensor", "us", "memory"), (MEMORY + "GetOptimalBatchSize", "uu", "memory"),
        (MEMORY + "ListTensors", "uu", "memory"), (MEMORY + "RenewLease", "uu", "memory"),
        (COMM + "AsyncTransfer", "uu", "communication"), (COMM + "AllReduce", "uu", "communication"),
        (COMM + "Broadcast", "uu", "communication"), (COMM + "AllGather", "uu", "communication"),
        (COMM + "ReduceScatter", "uu", "communication"),
        (SCHED + "SubmitTask", "uu", "scheduler"), (SCHED + "SubmitTasks", "uu", "scheduler"),
        (SCHED + "WatchTasks", "us", "scheduler"), (SCHED + "CancelTask", "uu", "scheduler"),
        (SCHED + "WaitTask", "uu", "scheduler"),
        (SCALING + "SetScalingPolicy", "uu", "scaling"),
        (SCALING + "CollectWorkloadMetrics", "uu", "scaling"),
        (HEALTH + "Check", "uu", "health"), (HEALTH + "Watch", "us", "health"),
        (REPORT + "GetPerformanceReport", "uu", "report"),
    ]

    def sample_payload(self, rng):
        # A valid message of some type to mutate (field numbers overlap across
        # types, so mutated bytes reach many decoders).
        spec = tpb.TaskSpec(key="a", model_name="add", owner=OWNER, depends_on=["b"])
        spec.inputs.add(name="INPUT0", tensor=cpb.InlineTensor(datatype="FP32", shape=[2],
                                                             data=raw_f32([1, 2])))
        req = kpb.ModelInferRequest(model_name="identity", id="x")
        req.inputs.add(name="INPUT0", datatype="BYTES", shape=[2])
        req.raw_input_contents.append(bytes_elems([b"ab", b"c"]))
        req.outputs.add(name="OUTPUT0")
        return rng.choice([
            req.SerializeToString(),
            tpb.SubmitTasksRequest(tasks=[spec, spec]).SerializeToString(),
            mpb.AllocateTensorRequest(datatype="UINT8", shape=[16], device=0, owner=OWNER)
            .SerializeToString(),
            mpb_comm.AsyncTransferRequest(inline_tensor=cpb.InlineTensor(
                datatype="INT32", shape=[2], data=bytes(8)), dst_device=1).SerializeToString(),
            spb.SetScalingPolicyRequest(policy=spb.ScalingPolicy(
                enabled=False, evaluation_interval_seconds=1, min_active_devices=1,
                max_replicas=1, window_length_seconds=10)).SerializeToString(),
        ])

    @staticmethod
    def mutate(rng, data):
        b = bytearray(data)
        for _ in range(rng.randrange(1, 8)):
            r = rng.random()
            if r < 0.4 and b:
                b[rng.randrange(len(b))] = rng.randrange(256)
            elif r < 0.6:
                at = rng.randrange(len(b) + 1)
                b[at:at] = os.urandom(rng.randrange(1, 16))
            elif r < 0.75 and b:
                del b[rng.randrange(len(b)):]
            elif r < 0.9 and b:
                at = rng.randrange(len(b))
                b[at:at] = b[at:at + rng.randrange(1, 64)] * rng.randrange(1, 4)
            else:
                b += bytes([rng.randrange(256)]) + os.urandom(rng.randrange(8))
        return bytes(b)

    def fuzz_op(self, rng):
        path, kind, fam = rng.choice(self.FUZZ_METHODS)
        payload = self.mutate(rng, self.sample_payload(rng))
        if kind in ("su", "bidi"):
            payload = [payload, self.mutate(rng, self.sample_payload(rng))]
        self.call(rng, path, kind, payload, fam, "fuzzed", timeout=2.0 if kind == "us" else 10.0)

    def worker(self, index):
        rng = random.Random(ARGS.seed * 1000 + index)
        while not self.stop.is_set():
            r = rng.random()
            if r < 0.35:
                self.valid_op(rng)
            elif r < 0.65:
                self.hostile_op(rng)
            else:
                self.fuzz_op(rng)
            if self.d.proc.poll() is not None:
                self.stop.set()

    def free_everything(self):
        rng = random.Random(0)
        freed = 0
        for _ in range(1000):
            code, rs = self.call(rng, MEMORY + "ListTensors", "uu",
                                 mpb.ListTensorsRequest(page_size=1000).SerializeToString(),
                                 "memory", "valid")
            if code != "OK":
                break
            infos = mpb.ListTensorsResponse.FromString(rs[0]).tensors
            if not infos:
                break
            for info in infos:
                code, _ = self.call(rng, MEMORY + "FreeTensor", "uu",
                                    mpb.FreeTensorRequest(tensor_id=info.id).SerializeToString(),
                                    "memory", "valid")
                freed += code == "OK"
        for dev in (0, 1):
            self.call(rng, MEMORY + "Compact", "uu", mpb.CompactRequest(device=dev)
                      .SerializeToString(), "memory", "valid")
        return freed

    def pool_summary(self):
        code, rs = self.call(random.Random(0), MEMORY + "GetMemoryStats", "uu",
                             mpb.GetMemoryStatsRequest().SerializeToString(), "memory", "valid")
        if code != "OK":
            return code
        return "; ".join("device %d: %d tensors, allocated %.1f MiB, reserved %.1f MiB" %
                         (dv.device, dv.active_tensors, dv.allocated_bytes / 1048576.0,
                          dv.reserved_bytes / 1048576.0)
                         for dv in mpb.MemoryStats.FromString(rs[0]).devices)


def sigterm_phase(d):
    """32 clients loop 1 MiB identity calls; SIGTERM once each has one OK.
    Every call started before the signal must be answered OK."""
    opts = [("grpc.max_receive_message_length", 64 << 20)]
    payload = kpb.ModelInferRequest(model_name="identity")
    payload.inputs.add(name="INPUT0", datatype="UINT8", shape=[1 << 20])
    payload.raw_input_contents.append(b"q" * (1 << 20))
    data = payload.SerializeToString()
    signalled = threading.Event()
    ok = [0]
    failures = []
    lock = threading.Lock()
    first = threading.Barrier(33)

    def client():
        ch = grpc.insecure_channel(d.target, options=opts)
        stub = ch.unary_unary(KSERVE + "ModelInfer", lambda b: b, lambda b: b)
        waited = False
        while not signalled.is_set():
            try:
                resp = kpb.ModelInferResponse.FromString(stub(data, timeout=120))
                good = resp.raw_output_contents[0] == payload.raw_input_contents[0]
                with lock:
                    ok[0] += good
                    if not good:
                        failures.append("wrong bytes")
            except grpc.RpcError as e:
                with lock:
                    failures.append("%s %s" % (e.code().name, e.details()))
                break
            if not waited:
                waited = True
                first.wait()
        ch.close()

    threads = [threading.Thread(target=client) for _ in range(32)]
    for t in threads:
        t.start()
    first.wait()
    signalled.set()
    d.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join()
    try:
        rc = d.proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        d.proc.kill()
        rc = "killed after 120 s"
    return rc, ok[0], failures


def server_codes(text):
    codes = collections.Counter()
    for m in re.finditer(r'^inferd_grpc_requests_total\{[^}]*code="([A-Z_]+)"[^}]*\} (\S+)',
                         text, re.M):
        codes[m.group(1)] += int(float(m.group(2)))
    return codes


def main():
    d = Daemon(ARGS.inferd)
    c = Campaign(d)
    # Warm up with the same mix: thread pools, channels, allocator arenas and
    # the bounded caches (retained tasks, statistics) reach their working
    # size before the start figure; its tensors are freed like the campaign's.
    warm = [threading.Thread(target=c.worker, args=(100 + i,)) for i in range(ARGS.workers)]
    for w in warm:
        w.start()
    time.sleep(ARGS.warmup_seconds)
    c.stop.set()
    for w in warm:
        w.join()
    c.stop.clear()
    c.free_everything()
    time.sleep(ARGS.settle_seconds)
    warm_calls = c.calls
    c.calls = c.fuzzed = c.hostile = c.valid = 0
    c.codes.clear()
    rss_start = d.rss_kib()
    print("warm-up: %d calls in %.0f s" % (warm_calls, ARGS.warmup_seconds), flush=True)
    print("rss start (after warm-up): %.1f MiB" % (rss_start / 1024.0), flush=True)
    t0 = time.time()
    workers = [threading.Thread(target=c.worker, args=(i,)) for i in range(ARGS.workers)]
    for w in workers:
        w.start()
    rss_peak = rss_start
    while time.time() - t0 < ARGS.seconds and d.proc.poll() is None:
        time.sleep(1)
        rss_peak = max(rss_peak, d.rss_kib())
        if int(time.time() - t0) % 60 == 0:
            print("  %4.0f s: %d calls, rss %.1f MiB" % (time.time() - t0, c.calls,
                                                          d.rss_kib() / 1024.0), flush=True)
    c.stop.set()
    for w in workers:
        w.join()
    alive = d.proc.poll() is None
    if not alive:
        print("DAEMON DIED rc=%s\n%s" % (d.proc.returncode, "".join(d.lines[-80:])))
        return 1
    rss_after = d.rss_kib()
    freed = c.free_everything()
    time.sleep(ARGS.settle_seconds)
    rss_freed = d.rss_kib()
    pools = c.pool_summary()
    scodes = server_codes(d.metrics())
    elapsed = time.time() - t0
    rc, sig_ok, sig_fail = sigterm_phase(d)

    total = c.fuzzed + c.hostile
    by_code = collections.Counter()
    for (fam, code), n in c.codes.items():
        by_code[code] += n
    print("\n== hostile campaign: %.0f s, %d workers, daemon %s" % (elapsed, ARGS.workers,
                                                                    ARGS.inferd))
    print("calls: %d (valid %d, hostile %d, fuzzed %d; hostile+fuzzed %d)" %
          (c.calls, c.valid, c.hostile, c.fuzzed, total))
    print("client-side codes: " + ", ".join("%s %d" % kv for kv in sorted(by_code.items())))
    fams = sorted({f for f, _ in c.codes})
    for f in fams:
        print("  %-13s " % f + ", ".join("%s %d" % (code, n) for (ff, code), n in
                                          sorted(c.codes.items()) if ff == f))
    print("daemon inferd_grpc_requests_total by code: " +
          ", ".join("%s %d" % kv for kv in sorted(scodes.items())))
    print("streams opened %d, still open at the end %d" % (c.streams_opened, c.streams_open))
    print("tensors freed after the campaign: %d" % freed)
    print("RSS: start %.1f MiB, peak %.1f MiB, after campaign %.1f MiB, after freeing %.1f MiB "
          "(%+.1f%% of start)" % (rss_start / 1024.0, rss_peak / 1024.0, rss_after / 1024.0,
                                  rss_freed / 1024.0, 100.0 * (rss_freed - rss_start) / rss_start))
    print("pools after freeing: " + pools)
    print("SIGTERM: exit %s, %d calls OK, %d failed %s" % (rc, sig_ok, len(sig_fail),
                                                          sig_fail[:3]))
    for b in c.bad[:10]:
        print("INTERNAL/UNKNOWN: %s" % (b,))
    checks = {
        ">= 100000 hostile+fuzzed": total >= 100000,
        "daemon alive": alive,
        "no INTERNAL/UNKNOWN": by_code["INTERNAL"] + by_code["UNKNOWN"] == 0 and
        scodes["INTERNAL"] + scodes["UNKNOWN"] == 0,
        "RSS within %d%%" % int(ARGS.rss_tolerance * 100):
            rss_freed <= rss_start * (1 + ARGS.rss_tolerance),
        "no stream left open": c.streams_open == 0,
        "SIGTERM exit 0, every call OK": rc == 0 and not sig_fail,
    }
    for k, v in checks.items():
        print("%-34s %s" % (k, "yes" if v else "NO"))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
