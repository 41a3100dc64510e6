// InferQueues::HandOffs: Stop waits for the responses handed to a queue
// thread before it shuts the queues down.
#include "server/infer_queues.h"

#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

TEST(InferQueuesHandOffsTest, NoneAwaitedReturnsAtOnce) {
  InferQueues::HandOffs h;
  h.AwaitNone();
  h.Begin();
  h.End();
  h.AwaitNone();
}

TEST(InferQueuesHandOffsTest, AwaitNoneWaitsForTheLastEnd) {
  InferQueues::HandOffs h;
  h.Begin();
  h.Begin();
  absl::Notification done;
  std::thread waiter([&] {
    h.AwaitNone();
    done.Notify();
  });
  h.End();
  absl::SleepFor(absl::Milliseconds(20));  // a chance to return too early
  EXPECT_FALSE(done.HasBeenNotified());
  h.End();
  done.WaitForNotification();
  waiter.join();
}

}  // namespace
}  // namespace inferd
