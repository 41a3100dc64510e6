#!/usr/bin/env bash
# Writes the starting corpus of every fuzz target into corpus/<target>/
# (committed; rerun after a protocol change). Needs protoc and python3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
c="$here/corpus"
rm -rf "$c"
mkdir -p "$c"/{fuzz_model_infer,fuzz_tensor_codec,fuzz_task_spec,fuzz_bytes_framing,fuzz_config_yaml,fuzz_model_config,fuzz_safetensors,fuzz_strict_json,fuzz_batch_size}
inc=(-I"$root/proto" -I/usr/share/grpc-proto)

enc() {  # enc MESSAGE FILE OUT  (text format on stdin)
  protoc "${inc[@]}" --encode="$1" "$2" > "$3"
}

# KServe ModelInfer requests for the builtin models.
G=inference/grpc_service.proto
enc inference.ModelInferRequest $G "$c/fuzz_model_infer/identity_fp32_raw" <<'T'
model_name: "identity" inputs { name: "INPUT0" datatype: "FP32" shape: [2] }
raw_input_contents: "\000\000\200?\000\000\000@"
T
enc inference.ModelInferRequest $G "$c/fuzz_model_infer/add_typed" <<'T'
model_name: "add" id: "7"
inputs { name: "INPUT0" datatype: "INT32" shape: [1, 3] contents { int_contents: [1, 2, 3] } }
inputs { name: "INPUT1" datatype: "INT32" shape: [1, 3] contents { int_contents: [4, 5, 6] } }
outputs { name: "OUTPUT0" }
T
enc inference.ModelInferRequest $G "$c/fuzz_model_infer/identity_bytes" <<'T'
model_name: "identity" inputs { name: "INPUT0" datatype: "BYTES" shape: [2]
  contents { bytes_contents: ["ab", ""] } }
parameters { key: "priority" value { int64_param: 1 } }
T
enc inference.ModelInferRequest $G "$c/fuzz_model_infer/scale_params" <<'T'
model_name: "scale" model_version: "1" inputs { name: "INPUT0" datatype: "FP64" shape: [1]
  parameters { key: "binary_data_size" value { int64_param: 8 } } }
raw_input_contents: "\000\000\000\000\000\000\360?"
parameters { key: "factor" value { double_param: 2.5 } }
outputs { name: "OUTPUT0" parameters { key: "classification" value { int64_param: 1 } } }
T

# Tensor codec: datatype byte, element count byte, InferTensorContents.
for spec in "12 2 fp32_contents: [1.5, -2]" "8 3 int_contents: [1, -2, 3]" \
            "1 2 bool_contents: [true, false]" "14 2 bytes_contents: [\"x\", \"\"]" \
            "13 1 fp64_contents: [3.25]" "5 1 uint64_contents: [18446744073709551615]" \
            "9 2 int64_contents: [-9223372036854775808, 1]" "2 3 uint_contents: [0, 255, 7]"; do
  read -r dt n text <<<"$spec"
  out="$c/fuzz_tensor_codec/dt${dt}_n${n}"
  printf "\\x$(printf %02x "$dt")\\x$(printf %02x "$n")" > "$out"
  echo "$text" | protoc "${inc[@]}" --encode=inference.InferTensorContents $G >> "$out"
done

# Task specs.
S=inferd/v1/scheduler.proto
enc inferd.v1.SubmitTasksRequest $S "$c/fuzz_task_spec/chain" <<'T'
tasks { key: "a" model_name: "identity"
  inputs { name: "INPUT0" tensor { datatype: "FP32" shape: [2] data: "\000\000\200?\000\000\000@" } } }
tasks { key: "b" model_name: "scale" depends_on: "a" priority: PRIORITY_HIGH
  inputs { name: "INPUT0" task_output { task: "a" output: "OUTPUT0" } }
  parameters { key: "factor" value: 3 } timeout_seconds: 2 max_retries: 1 device: 0 }
T
enc inferd.v1.SubmitTasksRequest $S "$c/fuzz_task_spec/tensor_id" <<'T'
tasks { model_name: "add" keep_outputs_on_device: true owner: "me" memory_requirement_bytes: 4096
  inputs { name: "INPUT0" tensor_id: "00000000000000000000000000000001" }
  inputs { name: "INPUT1" tensor { datatype: "BYTES" shape: [1] data: "\001\000\000\000z" } }
  requested_outputs: "OUTPUT0" }
T

# BYTES framing: element count byte, chunk size byte, then the bytes.
printf '\x02\x03\x01\x00\x00\x00a\x00\x00\x00\x00' > "$c/fuzz_bytes_framing/two"
printf '\x01\x01\xff\xff\xff\xff' > "$c/fuzz_bytes_framing/huge_length"
printf '\x00\x07' > "$c/fuzz_bytes_framing/empty"

# Config YAML: the shipped config and small ones.
cp "$root/configs/inferd.yaml" "$c/fuzz_config_yaml/inferd.yaml"
printf 'server:\n  grpc_listen: "127.0.0.1:0"\nlimits:\n  max_dims: 8\n' > "$c/fuzz_config_yaml/small.yaml"
printf -- '---\na: 1\n---\nb: 2\n' > "$c/fuzz_config_yaml/two_documents.yaml"

# Model configs: the example repository's.
for d in "$root"/examples/triton_models/*/; do
  cp "$d/config.yaml" "$c/fuzz_model_config/$(basename "$d").yaml"
done

# safetensors and strict JSON.
python3 - "$c" <<'PY'
import json, struct, sys
c = sys.argv[1]
def st(name, header, data):
    h = json.dumps(header).encode()
    open(f"{c}/fuzz_safetensors/{name}", "wb").write(struct.pack("<Q", len(h)) + h + data)
st("two_tensors", {"__metadata__": {"format": "pt"},
                   "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                   "b": {"dtype": "I64", "shape": [1], "data_offsets": [16, 24]}}, bytes(24))
st("empty", {}, b"")
st("bf16", {"x": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}, bytes(6))
docs = {"object": '{"a": [1, 2.5e3, -0, true, null], "b": {"c": "\\u00e9\\n"}}',
        "array": '[[[]], {}, "", 123456789012345678901234567890]',
        "number": '-12.5E-3', "string": '"\\ud83d\\ude00"'}
for k, v in docs.items():
    open(f"{c}/fuzz_strict_json/{k}", "w").write(v)
PY

# GetOptimalBatchSize: device, model MiB (double), dtype, output and
# activation bytes, max batch, dims.
python3 - "$c" <<'PY'
import struct, sys
c = sys.argv[1]
def req(name, dev, mb, dt, out, act, mx, dims):
    b = struct.pack("<BdBQQqB", dev, mb, dt, out, act, mx, len(dims))
    b += b"".join(struct.pack("<q", d) for d in dims)
    open(f"{c}/fuzz_batch_size/{name}", "wb").write(b)
req("image", 1, 10.0, 12, 4000, 1 << 20, 0, [3, 224, 224])
req("limit", 1, 0.0, 2, 0, 0, 64, [16])
PY
echo "corpus written under $c"
