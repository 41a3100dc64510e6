"""inferd_client: the Python client of the inferd daemon.

    from inferd_client import Client, InferdManager, Tensor

    with Client("127.0.0.1:50051") as client:           # every RPC, typed
        out = client.infer("add", {"INPUT0": [1.0, 2.0], "INPUT1": [3.0, 4.0]})
        print(out["OUTPUT0"].values())                  # [4.0, 6.0]

    manager = InferdManager("127.0.0.1:50051")          # MultiGPUManager's method names
    print(manager.get_memory_stats())

The generated gRPC stubs are found through INFERD_PYTHON_STUBS or next to the
package (see inferd_client/_stubs.py); docs/CLIENTS.md describes it all.
"""

from inferd_client.client import (DEFAULT_TARGET, Client, InferdError, Stream, TaskOutputRef,
                                  decode_infer_response, task_outputs)
from inferd_client.convert import message_to_dict
from inferd_client.manager import InferdManager, MultiGPUManager, TransferFuture
from inferd_client.tensors import DATATYPES, Tensor, as_tensor, datatype_name

__version__ = "0.1.0"

__all__ = [
    "Client", "DATATYPES", "DEFAULT_TARGET", "InferdError", "InferdManager", "MultiGPUManager",
    "Stream", "TaskOutputRef", "Tensor", "TransferFuture", "as_tensor", "datatype_name",
    "decode_infer_response", "message_to_dict", "task_outputs",
]
