#include "core/device/cuda/nccl_communicator.h"

#include <nccl.h>

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/device/cuda/cuda_device.h"
#include "core/device/cuda/cuda_stream.h"
#include "core/util/checked_math.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

bool NcclType(DataType dtype, ncclDataType_t* out) {
  switch (dtype) {
    case DataType::kInt8:
      *out = ncclInt8;
      return true;
    case DataType::kUint8:
      *out = ncclUint8;
      return true;
    case DataType::kInt32:
      *out = ncclInt32;
      return true;
    case DataType::kUint32:
      *out = ncclUint32;
      return true;
    case DataType::kInt64:
      *out = ncclInt64;
      return true;
    case DataType::kUint64:
      *out = ncclUint64;
      return true;
    case DataType::kFp16:
      *out = ncclFloat16;
      return true;
    case DataType::kFp32:
      *out = ncclFloat32;
      return true;
    case DataType::kFp64:
      *out = ncclFloat64;
      return true;
    case DataType::kBf16:
      *out = ncclBfloat16;
      return true;
    default:
      return false;
  }
}

ncclRedOp_t NcclOp(CollectiveReduceOp op) {
  switch (op) {
    case CollectiveReduceOp::kSum:
      return ncclSum;
    case CollectiveReduceOp::kProd:
      return ncclProd;
    case CollectiveReduceOp::kMin:
      return ncclMin;
    case CollectiveReduceOp::kMax:
      return ncclMax;
    case CollectiveReduceOp::kAvg:
      return ncclAvg;
  }
  return ncclSum;
}

absl::StatusCode NcclCode(ncclResult_t r) {
  switch (r) {
    case ncclInvalidArgument:
    case ncclInvalidUsage:
      return absl::StatusCode::kInvalidArgument;
    case ncclRemoteError:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kInternal;
  }
}

std::string DeviceNames(const std::vector<Device*>& devices) {
  return absl::StrCat(
      "devices [",
      absl::StrJoin(devices, ", ",
                    [](std::string* out, const Device* d) { absl::StrAppend(out, d->index()); }),
      "]");
}

}  // namespace

absl::StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::Create(
    std::vector<Device*> devices) {
  if (devices.empty()) return absl::InvalidArgumentError("nccl communicator: no devices");
  std::vector<int> ordinals;
  absl::flat_hash_set<int> seen;
  for (Device* d : devices) {
    auto* cuda = dynamic_cast<CudaDevice*>(d);
    if (cuda == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "nccl communicator: device ", d == nullptr ? -1 : d->index(), " is not a CUDA device"));
    }
    if (!seen.insert(cuda->ordinal()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("nccl communicator: CUDA ordinal ", cuda->ordinal(), " appears twice"));
    }
    ordinals.push_back(cuda->ordinal());
  }
  std::vector<ncclComm_t> comms(devices.size(), nullptr);
  ncclResult_t r = ncclCommInitAll(comms.data(), static_cast<int>(comms.size()), ordinals.data());
  if (r != ncclSuccess) {
    return absl::Status(NcclCode(r),
                        absl::StrCat("ncclCommInitAll on ", DeviceNames(devices), ": ",
                                     ncclGetErrorString(r), " (", ncclGetLastError(nullptr), ")"));
  }
  return std::unique_ptr<NcclCommunicator>(new NcclCommunicator(std::move(devices), comms));
}

NcclCommunicator::NcclCommunicator(std::vector<Device*> devices, std::vector<ncclComm*> comms)
    : devices_(std::move(devices)),
      device_names_(DeviceNames(devices_)),
      comms_(std::move(comms)) {}

NcclCommunicator::~NcclCommunicator() {
  for (ncclComm_t c : comms_) {
    if (c == nullptr) continue;
    if (failed_) {
      (void)ncclCommAbort(c);
    } else {
      (void)ncclCommDestroy(c);
    }
  }
}

absl::Status NcclCommunicator::Error(const char* op, int result, int rank) {
  failed_ = true;
  const auto r = static_cast<ncclResult_t>(result);
  const char* detail = rank >= 0 ? ncclGetLastError(comms_[rank]) : ncclGetLastError(nullptr);
  return absl::Status(
      NcclCode(r),
      absl::StrCat("nccl ", op, " on ", device_names_, ": ", ncclGetErrorString(r),
                   detail != nullptr && *detail ? " (" : "", detail != nullptr ? detail : "",
                   detail != nullptr && *detail ? ")" : ""));
}

absl::Status NcclCommunicator::Group(const char* op, absl::Span<const CollectiveRank> ranks,
                                     DataType dtype, absl::FunctionRef<int(int, void*)> call) {
  if (ranks.size() != devices_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("nccl ", op, ": ", ranks.size(), " ranks for ", devices_.size(), " devices"));
  }
  ncclDataType_t unused;
  if (!NcclType(dtype, &unused)) {
    return absl::InvalidArgumentError(
        absl::StrCat("nccl ", op, ": datatype ", DataTypeName(dtype), " is not supported"));
  }
  std::vector<void*> streams(ranks.size());
  for (size_t r = 0; r < ranks.size(); ++r) {
    auto* s = dynamic_cast<CudaStream*>(ranks[r].stream);
    if (s == nullptr || &s->device() != devices_[r]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "nccl ", op, ": rank ", r, " needs a CUDA stream of device ", devices_[r]->index()));
    }
    streams[r] = s->cuda_stream();
  }
  if (failed_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "nccl ", op, " on ", device_names_, ": the communicator failed earlier; rebuild it"));
  }
  ncclResult_t r = ncclGroupStart();
  if (r != ncclSuccess) return Error(op, r, -1);
  int failed_rank = -1;
  ncclResult_t first = ncclSuccess;
  for (size_t k = 0; k < ranks.size(); ++k) {
    const auto rk = static_cast<ncclResult_t>(call(static_cast<int>(k), streams[k]));
    if (rk != ncclSuccess && first == ncclSuccess) {
      first = rk;
      failed_rank = static_cast<int>(k);
    }
  }
  r = ncclGroupEnd();
  if (first != ncclSuccess) return Error(op, first, failed_rank);
  if (r != ncclSuccess) return Error(op, r, 0);
  for (size_t k = 0; k < comms_.size(); ++k) {
    ncclResult_t async = ncclSuccess;
    if (ncclCommGetAsyncError(comms_[k], &async) == ncclSuccess && async != ncclSuccess &&
        async != ncclInProgress) {
      return Error(op, async, static_cast<int>(k));
    }
  }
  return absl::OkStatus();
}

absl::Status NcclCommunicator::Broadcast(absl::Span<const CollectiveRank> ranks, int root,
                                         DataType dtype, size_t count) {
  if (root < 0 || root >= static_cast<int>(devices_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("nccl broadcast: root ", root,
                                                   " is not a rank (", devices_.size(), " ranks)"));
  }
  if (count == 0) return Group("broadcast", ranks, dtype, [](int, void*) { return 0; });
  ncclDataType_t t;
  NcclType(dtype, &t);
  return Group("broadcast", ranks, dtype, [&](int k, void* stream) {
    const void* send = k == root ? ranks[k].send : ranks[k].recv;
    return static_cast<int>(ncclBroadcast(send, ranks[k].recv, count, t, root, comms_[k],
                                          static_cast<cudaStream_t>(stream)));
  });
}

absl::Status NcclCommunicator::AllReduce(absl::Span<const CollectiveRank> ranks, DataType dtype,
                                         size_t count, CollectiveReduceOp op) {
  if (count == 0) return Group("all-reduce", ranks, dtype, [](int, void*) { return 0; });
  ncclDataType_t t;
  NcclType(dtype, &t);
  return Group("all-reduce", ranks, dtype, [&](int k, void* stream) {
    return static_cast<int>(ncclAllReduce(ranks[k].send, ranks[k].recv, count, t, NcclOp(op),
                                          comms_[k], static_cast<cudaStream_t>(stream)));
  });
}

absl::Status NcclCommunicator::AllGather(absl::Span<const CollectiveRank> ranks, DataType dtype,
                                         size_t count) {
  if (count == 0) return Group("all-gather", ranks, dtype, [](int, void*) { return 0; });
  ncclDataType_t t;
  NcclType(dtype, &t);
  return Group("all-gather", ranks, dtype, [&](int k, void* stream) {
    return static_cast<int>(ncclAllGather(ranks[k].send, ranks[k].recv, count, t, comms_[k],
                                          static_cast<cudaStream_t>(stream)));
  });
}

absl::Status NcclCommunicator::ReduceScatter(absl::Span<const CollectiveRank> ranks, DataType dtype,
                                             size_t count, CollectiveReduceOp op) {
  if (count == 0) return Group("reduce-scatter", ranks, dtype, [](int, void*) { return 0; });
  ncclDataType_t t;
  NcclType(dtype, &t);
  return Group("reduce-scatter", ranks, dtype, [&](int k, void* stream) {
    return static_cast<int>(ncclReduceScatter(ranks[k].send, ranks[k].recv, count, t, NcclOp(op),
                                              comms_[k], static_cast<cudaStream_t>(stream)));
  });
}

absl::StatusOr<std::unique_ptr<Communicator>> NewNcclCommunicator(std::vector<Device*> devices) {
  ASSIGN_OR_RETURN(std::unique_ptr<NcclCommunicator> c,
                   NcclCommunicator::Create(std::move(devices)));
  return std::unique_ptr<Communicator>(std::move(c));
}

bool BuiltWithNccl() { return true; }

}  // namespace inferd
