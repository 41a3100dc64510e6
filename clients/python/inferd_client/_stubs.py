"""Finds and imports the generated protobuf / gRPC modules.

CMake's `python_client` target writes them with the system protoc and
grpc_python_plugin into <build>/python/ (inferd/v1/*_pb2.py,
inference/*_pb2.py) and the grpc-proto ones (health, reflection) into
<build>/python/grpc_protos/grpc/... . They are looked up, in order, in:

  1. the folder named by the INFERD_PYTHON_STUBS environment variable;
  2. inferd_client/_generated/ (a vendored copy inside the package);
  3. the folder that holds the inferd_client package (the layout CMake
     makes in <build>/python/, and an installed site-packages layout).

The grpc-proto modules live in a `grpc` namespace that the grpcio package
owns, so they are loaded from their file under private module names
instead of through sys.path.
"""

import importlib
import importlib.util
import os
import sys

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _candidates():
    env = os.environ.get("INFERD_PYTHON_STUBS")
    if env:
        yield os.path.abspath(env)
    yield os.path.join(_PACKAGE_DIR, "_generated")
    yield os.path.dirname(_PACKAGE_DIR)


def _find_root():
    tried = []
    for root in _candidates():
        if os.path.isfile(os.path.join(root, "inferd", "v1", "memory_pb2.py")):
            return root
        tried.append(root)
    raise ImportError(
        "inferd_client: generated stubs not found (looked for inferd/v1/memory_pb2.py in %s); "
        "build them with `cmake --build <build> --target python_client` and set "
        "INFERD_PYTHON_STUBS=<build>/python" % ", ".join(tried))


STUBS_DIR = _find_root()
if STUBS_DIR not in sys.path:
    sys.path.append(STUBS_DIR)


def _load_file(module_name, path):
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or not os.path.isfile(path):
        raise ImportError("inferd_client: %s not found; rebuild the python_client target" % path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


common_pb2 = importlib.import_module("inferd.v1.common_pb2")
memory_pb2 = importlib.import_module("inferd.v1.memory_pb2")
memory_pb2_grpc = importlib.import_module("inferd.v1.memory_pb2_grpc")
scheduler_pb2 = importlib.import_module("inferd.v1.scheduler_pb2")
scheduler_pb2_grpc = importlib.import_module("inferd.v1.scheduler_pb2_grpc")
communication_pb2 = importlib.import_module("inferd.v1.communication_pb2")
communication_pb2_grpc = importlib.import_module("inferd.v1.communication_pb2_grpc")
scaling_pb2 = importlib.import_module("inferd.v1.scaling_pb2")
scaling_pb2_grpc = importlib.import_module("inferd.v1.scaling_pb2_grpc")
report_pb2 = importlib.import_module("inferd.v1.report_pb2")
report_pb2_grpc = importlib.import_module("inferd.v1.report_pb2_grpc")
grpc_service_pb2 = importlib.import_module("inference.grpc_service_pb2")
grpc_service_pb2_grpc = importlib.import_module("inference.grpc_service_pb2_grpc")

_GRPC_PROTOS = os.path.join(STUBS_DIR, "grpc_protos", "grpc")
health_pb2 = _load_file("inferd_client._health_pb2",
                        os.path.join(_GRPC_PROTOS, "health", "v1", "health_pb2.py"))


def reflection_pb2():
    """The grpc.reflection.v1alpha messages (loaded on first use)."""
    name = "inferd_client._reflection_pb2"
    if name in sys.modules:
        return sys.modules[name]
    return _load_file(name, os.path.join(_GRPC_PROTOS, "reflection", "v1alpha", "reflection_pb2.py"))
