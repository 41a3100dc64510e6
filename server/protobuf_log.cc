#include "server/protobuf_log.h"

#include "core/util/logging.h"
#include "google/protobuf/stubs/logging.h"

namespace inferd {
namespace {

LogThrottle* throttle = nullptr;  // set once, before any parse

void Handler(google::protobuf::LogLevel level, const char* /*filename*/, int /*line*/,
             const std::string& message) {
  uint64_t suppressed = 0;
  if (throttle != nullptr && !throttle->Admit(&suppressed)) return;
  const LogLevel ours = level >= google::protobuf::LOGLEVEL_ERROR     ? LogLevel::kError
                        : level == google::protobuf::LOGLEVEL_WARNING ? LogLevel::kWarning
                                                                      : LogLevel::kInfo;
  if (!LogEnabled(ours)) return;
  LogLine(ours, suppressed > 0 ? absl::StrCat("protobuf: ", message, " (", suppressed,
                                              " protobuf messages left out before it)")
                               : absl::StrCat("protobuf: ", message));
}

}  // namespace

bool LogThrottle::Admit(uint64_t* suppressed) {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  if (now < next_) {
    ++suppressed_;
    return false;
  }
  *suppressed = suppressed_;
  suppressed_ = 0;
  next_ = now + interval_;
  return true;
}

void InstallProtobufLogThrottle(Clock* clock, absl::Duration interval) {
  if (throttle == nullptr) throttle = new LogThrottle(clock, interval);
  google::protobuf::SetLogHandler(&Handler);
}

}  // namespace inferd
