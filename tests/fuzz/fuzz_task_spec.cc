// inferd.v1 task specs: SubmitTasksRequest (binary protobuf) -> TaskSpec,
// as SubmitTask and SubmitTasks convert them.
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/scheduler_proto.h"
#include "tests/fuzz/quiet_protobuf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  inferd::v1::SubmitTasksRequest wire;
  if (!wire.ParseFromArray(data, static_cast<int>(size))) return 0;
  for (int i = 0; i < wire.tasks_size(); ++i) {
    inferd::TaskSpec spec;
    (void)inferd::TaskSpecFromProto(wire.tasks(i), "tasks[" + std::to_string(i) + "]", &spec);
  }
  return 0;
}
