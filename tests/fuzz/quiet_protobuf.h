// Included by the fuzz targets that parse protobuf messages (one per
// target binary): malformed input makes libprotobuf log an ERROR line per
// input (invalid UTF-8 in a string field); they are discarded, the
// fuzzer's own output is the report.
#ifndef INFERD_TESTS_FUZZ_QUIET_PROTOBUF_H_
#define INFERD_TESTS_FUZZ_QUIET_PROTOBUF_H_

#include "google/protobuf/stubs/logging.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

#endif  // INFERD_TESTS_FUZZ_QUIET_PROTOBUF_H_
