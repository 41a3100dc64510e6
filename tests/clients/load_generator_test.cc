// The closed-loop load generator (inferctl bench, the benchmarks) against
// the real daemon: many short runs one after another, as a benchmark's
// rounds are. A run's last callback may still be finishing when the run
// returns; the next run must neither crash nor lose count.
#include "clients/cpp/load_generator.h"

#include <string>

#include "absl/time/time.h"
#include "clients/cpp/tensor_helpers.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"

namespace inferd {
namespace {

TEST(LoadGeneratorTest, ShortRunsBackToBackCountEveryCall) {
  testing::DaemonProcess daemon(testing::DeviceArgs(1));
  ASSERT_TRUE(daemon.started()) << daemon.Stderr();
  LoadOptions o;
  o.target = daemon.target();
  o.request.set_model_name("identity");
  AddRawInput(&o.request, "INPUT0", DataType::kUint8, {64}, std::string(64, 'x'));
  o.warmup = absl::ZeroDuration();
  o.duration = absl::Milliseconds(2);
  uint64_t ok = 0;
  for (int run = 0; run < 400; ++run) {
    o.concurrency = 1 + run % 3;
    LoadResult r = RunLoad(o);
    ASSERT_EQ(r.errors, 0u) << "run " << run << ": " << r.first_error;
    ok += r.ok;
  }
  EXPECT_GT(ok, 0u);
}

}  // namespace
}  // namespace inferd
