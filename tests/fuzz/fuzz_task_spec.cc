// inferd.v1 task specs: SubmitTasksRequest (binary protobuf) -> TaskSpec,
// as SubmitTask and SubmitTasks convert them.
#include <cstddef>
#include <cstdint>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "server/scheduler_proto.h"


// Malformed input makes libprotobuf log an ERROR line per input (invalid
// UTF-8 in a string field): discarded, the fuzzer's own output is the report.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  inferd::v1::SubmitTasksRequest wire;
  if (!wire.ParseFromArray(data, static_cast<int>(size))) return 0;
  for (int i = 0; i < wire.tasks_size(); ++i) {
    inferd::TaskSpec spec;
    (void)inferd::TaskSpecFromProto(wire.tasks(i), "tasks[" + std::to_string(i) + "]", &spec);
  }
  return 0;
}
