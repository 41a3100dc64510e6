// InFlight: AwaitNone returns once every Begin has had its End (the
// scheduler's and the front end's shutdowns wait on it for work handed to
// other threads).
#include "core/util/in_flight.h"

#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

TEST(InFlightTest, NoneAwaitedReturnsAtOnce) {
  InFlight h;
  h.AwaitNone();
  h.Begin();
  h.End();
  h.AwaitNone();
}

TEST(InFlightTest, AwaitNoneWaitsForTheLastEnd) {
  InFlight h;
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
