"""ReflectionClient: grpcurl's list / describe / invoke from Python, through
the daemon's server reflection (grpc.reflection.v1alpha), with no proto
files: descriptors come from the server, requests are parsed from the same
JSON grpcurl takes (proto or lowerCamel field names), and responses print
as grpcurl prints them.

    r = ReflectionClient(grpc.insecure_channel("127.0.0.1:50051"))
    r.list_services()                                  # grpcurl ... list
    r.describe("inference.GRPCInferenceService")       # grpcurl ... describe X
    r.invoke_json("grpc.health.v1.Health/Check",       # grpcurl -d '{...}' ... M
                  '{"service":"inferd"}')

Not thread-safe (it caches descriptors in one pool); use one per thread.
"""

import json

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

from inferd_client import _stubs

_METHOD = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


def _message_class(descriptor):
    get = getattr(message_factory, "GetMessageClass", None)  # protobuf >= 4.22
    if get is not None:
        return get(descriptor)
    return message_factory.MessageFactory(descriptor.file.pool).GetPrototype(descriptor)


def _streaming(method):
    """(client_streaming, server_streaming) of a MethodDescriptor."""
    proto = descriptor_pb2.MethodDescriptorProto()
    method.CopyToProto(proto)
    return proto.client_streaming, proto.server_streaming


class ReflectionError(Exception):
    """The server's reflection answered an error (e.g. an unknown symbol)."""


class ReflectionClient(object):
    def __init__(self, channel, timeout=30.0):
        pb = _stubs.reflection_pb2()
        self._pb = pb
        self._timeout = timeout
        self._channel = channel
        self._call = channel.stream_stream(
            _METHOD, request_serializer=pb.ServerReflectionRequest.SerializeToString,
            response_deserializer=pb.ServerReflectionResponse.FromString)
        self._pool = descriptor_pool.DescriptorPool()
        self._files = set()

    def _ask(self, **fields):
        req = self._pb.ServerReflectionRequest(host="", **fields)
        resp = next(iter(self._call(iter([req]), timeout=self._timeout)))
        if resp.HasField("error_response"):
            raise ReflectionError("%s: %s (code %d)" % (
                fields, resp.error_response.error_message, resp.error_response.error_code))
        return resp

    def list_services(self):
        """The fully-qualified names of the services the server exposes."""
        return [s.name for s in self._ask(list_services="").list_services_response.service]

    def _add_files(self, serialized):
        protos = {}
        for blob in serialized:
            fd = descriptor_pb2.FileDescriptorProto.FromString(blob)
            protos[fd.name] = fd
        while protos:
            progress = False
            for name, fd in list(protos.items()):
                if name in self._files:
                    del protos[name]
                    progress = True
                    continue
                missing = [d for d in fd.dependency if d not in self._files and d not in protos]
                for dep in missing:
                    resp = self._ask(file_by_filename=dep)
                    for blob in resp.file_descriptor_response.file_descriptor_proto:
                        dep_fd = descriptor_pb2.FileDescriptorProto.FromString(blob)
                        protos.setdefault(dep_fd.name, dep_fd)
                if all(d in self._files for d in fd.dependency):
                    self._pool.Add(fd)
                    self._files.add(name)
                    del protos[name]
                    progress = True
            if not progress:
                raise ReflectionError("cannot resolve the dependencies of %s" % sorted(protos))

    def _load_symbol(self, symbol):
        resp = self._ask(file_containing_symbol=symbol)
        self._add_files(resp.file_descriptor_response.file_descriptor_proto)

    def describe(self, symbol):
        """The descriptor of a service, method ("pkg.Service.Method") or
        message, fetched from the server."""
        self._load_symbol(symbol)
        for find in (self._pool.FindServiceByName, self._pool.FindMessageTypeByName,
                     self._pool.FindMethodByName, self._pool.FindEnumTypeByName):
            try:
                return find(symbol)
            except KeyError:
                continue
        raise ReflectionError("symbol %s not found" % symbol)

    def describe_text(self, symbol):
        """The symbol's definition as proto source text, as grpcurl
        describe shows it (services and messages)."""
        d = self.describe(symbol)
        if hasattr(d, "methods"):
            lines = ["service %s {" % d.name]
            for m in d.methods:
                client_streaming, server_streaming = _streaming(m)
                cs = "stream " if client_streaming else ""
                ss = "stream " if server_streaming else ""
                lines.append("  rpc %s ( %s.%s ) returns ( %s.%s );" % (
                    m.name, cs, m.input_type.full_name, ss, m.output_type.full_name))
            lines.append("}")
            return "%s is a service:\n%s" % (d.full_name, "\n".join(lines))
        if hasattr(d, "fields"):
            fields = ["  %s = %d;" % (f.name, f.number) for f in d.fields]
            return "%s is a message:\nmessage %s {\n%s\n}" % (d.full_name, d.name, "\n".join(fields))
        return "%s" % d.full_name

    def method(self, name):
        """Resolves "pkg.Service/Method" (or "pkg.Service.Method") to its
        MethodDescriptor."""
        service, sep, method = name.rpartition("/")
        if not sep:
            service, _, method = name.rpartition(".")
        svc = self.describe(service)
        if not hasattr(svc, "methods_by_name") or method not in svc.methods_by_name:
            raise ReflectionError("service %s has no method %s" % (service, method))
        return svc.methods_by_name[method]

    def invoke(self, name, request_json="{}", timeout=None):
        """Calls a unary method with a request parsed from JSON; returns the
        response message (a dynamic message class)."""
        m = self.method(name)
        if any(_streaming(m)):
            raise ReflectionError("%s is a streaming method; invoke() calls unary methods" % name)
        req_cls = _message_class(m.input_type)
        resp_cls = _message_class(m.output_type)
        request = json_format.Parse(request_json or "{}", req_cls())
        call = self._channel.unary_unary(
            "/%s/%s" % (m.containing_service.full_name, m.name),
            request_serializer=req_cls.SerializeToString, response_deserializer=resp_cls.FromString)
        return call(request, timeout=timeout or self._timeout)

    def invoke_json(self, name, request_json="{}", timeout=None):
        """invoke() with the response as JSON text, as grpcurl prints it."""
        resp = self.invoke(name, request_json, timeout)
        return json_format.MessageToJson(resp, descriptor_pool=self._pool, indent=2)


def response_dict(json_text):
    """Parses invoke_json()'s output into Python values."""
    return json.loads(json_text)
