// DaemonProcess: starts the real build/bin/inferd as a child process on
// free loopback ports, captures its stderr, and stops it — for integration
// tests that talk to it over gRPC.
#ifndef INFERD_TESTS_INTEGRATION_DAEMON_PROCESS_H_
#define INFERD_TESTS_INTEGRATION_DAEMON_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace inferd::testing {

std::string InferdBinary();
std::string InferctlBinary();
// The source tree (for configs/): $INFERD_SOURCE_DIR or the configured path.
std::string SourceDir();
// "--host-devices=N", or nothing when INFERD_TEST_USE_GPU=1 (the daemon
// then uses the GPUs it finds).
std::vector<std::string> DeviceArgs(int host_devices);

// Thread-safe.
class DaemonProcess {
 public:
  // Starts inferd with `args` plus --grpc-listen/--metrics-listen on port 0
  // (unless `args` sets them) and waits until it logs its ports.
  // Returns nullopt-equivalent (started() false) when it exits first.
  explicit DaemonProcess(std::vector<std::string> args, bool add_listen_flags = true);
  ~DaemonProcess();

  bool started() const { return grpc_port_ > 0; }
  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(grpc_port_); }
  pid_t pid() const { return pid_; }

  void Signal(int sig);
  // Waits for exit; returns the exit code (128+signal when killed), or
  // nullopt on timeout.
  std::optional<int> Wait(absl::Duration timeout);
  std::string Stderr();

 private:
  void ReadLoop(int fd);

  pid_t pid_ = -1;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
  std::thread reader_;
  absl::Mutex mu_;
  std::string stderr_ ABSL_GUARDED_BY(mu_);
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<int> exit_code_;
};

// A daemon started from a YAML config on `host_devices` host devices (or
// the GPUs, see DeviceArgs), shared by the tests of one suite. The
// destructor sends SIGTERM and returns the exit code through `exit_code`
// for the suite to check; the temp config goes with it.
class ConfiguredDaemon {
 public:
  ConfiguredDaemon(const std::string& config_yaml, int host_devices);
  ~ConfiguredDaemon();
  // SIGTERM, then waits; returns the exit code (nullopt on timeout).
  std::optional<int> Stop();
  DaemonProcess& process() { return *process_; }

 private:
  std::string config_path_;
  std::unique_ptr<DaemonProcess> process_;
  bool stopped_ = false;
};

// Runs a command to completion; returns exit code and combined output.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout);

// Fetches http://127.0.0.1:port/path with a plain socket; returns the body.
std::string HttpGet(int port, const std::string& path);

// Writes `contents` to a fresh temp file and returns its path.
std::string WriteTempFile(const std::string& contents, const std::string& suffix = ".yaml");

}  // namespace inferd::testing

#endif  // INFERD_TESTS_INTEGRATION_DAEMON_PROCESS_H_
