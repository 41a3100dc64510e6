// Protobuf's own log lines in the daemon log, throttled. Protobuf logs an
// ERROR for every message it fails to parse because a string field holds
// invalid UTF-8; a client sending such requests in a loop must not flood
// the log. The first line goes through, then at most one per interval,
// with the number left out.
#ifndef INFERD_SERVER_PROTOBUF_LOG_H_
#define INFERD_SERVER_PROTOBUF_LOG_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/util/clock.h"

namespace inferd {

// Decides which of a stream of similar log lines to keep. Thread-safe; the
// clock is borrowed.
class LogThrottle {
 public:
  LogThrottle(Clock* clock, absl::Duration interval) : clock_(clock), interval_(interval) {}

  // True when this line should be written; *suppressed then holds how many
  // were left out since the last one written.
  bool Admit(uint64_t* suppressed);

 private:
  Clock* const clock_;
  const absl::Duration interval_;
  absl::Mutex mu_;
  absl::Time next_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

// Sends protobuf's log lines to the daemon log through a LogThrottle of
// `interval`. Call once at start, before any thread parses a message.
void InstallProtobufLogThrottle(Clock* clock, absl::Duration interval);

}  // namespace inferd

#endif  // INFERD_SERVER_PROTOBUF_LOG_H_
