// inferd: the daemon's entry point. Flags and config in, signals handled
// here; everything else is built by Daemon.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/config/config.h"
#include "core/util/logging.h"
#include "server/daemon.h"
#include "server/flags.h"
#include "server/healthcheck.h"
#include "core/util/version.h"

#if INFERD_WITH_JEMALLOC
// jemalloc's options, read when it starts: a background thread purges freed
// pages (after its default 10 s decay) so RSS follows the live heap without
// a request thread paying for it; at most 8 arenas (the default, 4 per
// core, holds more idle memory on many-core GPU hosts). MALLOC_CONF in the
// environment still overrides them.
extern "C" {
const char* malloc_conf = "background_thread:true,narenas:8";
}
#endif

namespace {

constexpr int kExitConfig = 2;

int Main(int argc, char** argv) {
  // Debian's Abseil is built with Mutex deadlock detection on, which costs a
  // graph update per lock; tests keep it, the daemon does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#if !INFERD_WITH_JEMALLOC
  // With glibc's malloc: allocations of 256 KiB and up (request and
  // response messages) are mapped and returned on free. Set explicitly,
  // glibc no longer raises the threshold after each large free (up to
  // 32 MiB), which left freed message buffers in the heap: RSS stayed up
  // after load.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
  if (argc > 1 && std::strcmp(argv[1], "healthcheck") == 0) {
    return inferd::RunHealthcheck(argc, argv);
  }
  auto flags = inferd::ParseFlags(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "inferd: %s\n%s", std::string(flags.status().message()).c_str(),
                 inferd::kUsage);
    return kExitConfig;
  }
  if (flags->help) {
    std::fputs(inferd::kUsage, stdout);
    return 0;
  }
  if (flags->version) {
    std::printf("inferd %s\n", inferd::kVersion);
    return 0;
  }
  inferd::Config config;
  if (!flags->config_path.empty()) {
    auto loaded = inferd::LoadConfigFile(flags->config_path);
    if (!loaded.ok()) {
      std::fprintf(stderr, "inferd: config error: %s\n",
                   std::string(loaded.status().message()).c_str());
      return kExitConfig;
    }
    config = *std::move(loaded);
  }
  inferd::ApplyFlags(*flags, &config);
  if (absl::Status st = inferd::ValidateConfig(config); !st.ok()) {
    std::fprintf(stderr, "inferd: config error: %s\n", std::string(st.message()).c_str());
    return kExitConfig;
  }
  if (flags->print_config) {
    std::fputs(inferd::DescribeConfig(config).c_str(), stdout);
    return 0;
  }
  inferd::LogLevel level;
  if (inferd::ParseLogLevel(config.server.log_level, &level)) inferd::SetMinLogLevel(level);

  // Signals are taken synchronously by this thread; block them everywhere
  // before any other thread starts. SIGUSR1 tells us shutdown finished.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  sigaddset(&signals, SIGHUP);  // reload credentials
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto daemon = inferd::Daemon::Start(config);
  if (!daemon.ok()) {
    INFERD_LOG(kError, "start failed: ", daemon.status().message());
    return daemon.status().code() == absl::StatusCode::kInvalidArgument ? kExitConfig : 1;
  }
  std::thread shutdown_thread;
  bool shutting_down = false;
  while (true) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGUSR1) break;  // shutdown finished
    if (sig == SIGHUP) {
      if (!shutting_down) (*daemon)->Reload();
      continue;
    }
    if (shutting_down) {
      INFERD_LOG(kWarning, "second signal (", strsignal(sig), "): exiting now");
      std::_Exit(128 + sig);
    }
    shutting_down = true;
    INFERD_LOG(kInfo, "received ", strsignal(sig));
    const absl::Duration grace = absl::Seconds(config.server.shutdown_grace_seconds);
    shutdown_thread = std::thread([d = daemon->get(), grace] {
      d->Shutdown(grace);
      kill(getpid(), SIGUSR1);
    });
  }
  shutdown_thread.join();
  daemon->reset();
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
