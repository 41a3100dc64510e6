#include "clients/cpp/tensor_stream.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"

namespace inferd {

absl::StatusOr<v1::TensorInfo> UploadTensor(InferdClient& client,
                                            const v1::AllocateTensorRequest& header,
                                            absl::string_view data, size_t chunk_bytes) {
  if (chunk_bytes == 0) return absl::InvalidArgumentError("chunk_bytes: 0 must be positive");
  auto stub = v1::Memory::NewStub(client.channel());
  v1::TensorInfo info;
  absl::Status st = client.WithRetries([&](grpc::ClientContext* ctx) {
    std::unique_ptr<grpc::ClientWriter<v1::UploadTensorRequest>> writer =
        stub->UploadTensor(ctx, &info);
    v1::UploadTensorRequest msg;
    *msg.mutable_header() = header;
    bool ok = writer->Write(msg);
    for (size_t off = 0; ok && off < data.size(); off += chunk_bytes) {
      const absl::string_view chunk = data.substr(off, std::min(chunk_bytes, data.size() - off));
      msg.set_chunk(chunk.data(), chunk.size());
      ok = writer->Write(msg);
    }
    writer->WritesDone();
    return writer->Finish();  // carries the server's status when a write failed
  });
  if (!st.ok()) return st;
  return info;
}

absl::StatusOr<DownloadedTensor> DownloadTensor(InferdClient& client, const std::string& tensor_id,
                                                uint32_t chunk_bytes) {
  auto stub = v1::Memory::NewStub(client.channel());
  v1::DownloadTensorRequest req;
  req.set_tensor_id(tensor_id);
  req.set_chunk_bytes(chunk_bytes);
  DownloadedTensor out;
  absl::Status order = absl::OkStatus();
  absl::Status st = client.WithRetries([&](grpc::ClientContext* ctx) {
    out = DownloadedTensor();
    order = absl::OkStatus();
    std::unique_ptr<grpc::ClientReader<v1::DownloadTensorResponse>> reader =
        stub->DownloadTensor(ctx, req);
    v1::DownloadTensorResponse msg;
    bool first = true;
    while (reader->Read(&msg)) {
      if (first) {
        out.info = msg.info();
        first = false;
      }
      if (msg.offset() != out.data.size() && order.ok()) {
        order = absl::DataLossError(absl::StrCat("download ", tensor_id, ": chunk at offset ",
                                                 msg.offset(), ", expected ", out.data.size()));
        ctx->TryCancel();
      }
      out.data.append(msg.chunk());
    }
    return reader->Finish();
  });
  if (!order.ok()) return order;
  if (!st.ok()) return st;
  if (out.data.size() != out.info.byte_size()) {
    return absl::DataLossError(absl::StrCat("download ", tensor_id, ": received ", out.data.size(),
                                            " of ", out.info.byte_size(), " bytes"));
  }
  return out;
}

}  // namespace inferd
