#include "core/device/communicator.h"

namespace inferd {

const char* CollectiveReduceOpName(CollectiveReduceOp op) {
  switch (op) {
    case CollectiveReduceOp::kSum:
      return "sum";
    case CollectiveReduceOp::kProd:
      return "prod";
    case CollectiveReduceOp::kMin:
      return "min";
    case CollectiveReduceOp::kMax:
      return "max";
    case CollectiveReduceOp::kAvg:
      return "avg";
  }
  return "unknown";
}

bool IsCollectiveDataType(DataType dtype) {
  switch (dtype) {
    case DataType::kInt8:
    case DataType::kUint8:
    case DataType::kInt32:
    case DataType::kUint32:
    case DataType::kInt64:
    case DataType::kUint64:
    case DataType::kFp16:
    case DataType::kFp32:
    case DataType::kFp64:
    case DataType::kBf16:
      return true;
    default:
      return false;
  }
}

}  // namespace inferd
