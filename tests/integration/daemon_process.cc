#include "tests/integration/daemon_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <regex>

#include "absl/strings/match.h"

namespace inferd::testing {

namespace {
std::string BinDir() {
  const char* dir = std::getenv("INFERD_BIN_DIR");  // set on the GPU machine
  return dir != nullptr ? dir : std::string(INFERD_BINARY_DIR) + "/bin";
}
}  // namespace

std::string InferdBinary() { return BinDir() + "/inferd"; }
std::string InferctlBinary() { return BinDir() + "/inferctl"; }

std::string SourceDir() {
  const char* dir = std::getenv("INFERD_SOURCE_DIR");
  return dir != nullptr ? dir : std::string(INFERD_SOURCE_DIR);
}

std::vector<std::string> DeviceArgs(int host_devices) {
  const char* gpu = std::getenv("INFERD_TEST_USE_GPU");
  if (gpu != nullptr && std::string(gpu) == "1") return {};
  return {"--host-devices=" + std::to_string(host_devices)};
}

namespace {

pid_t Spawn(const std::vector<std::string>& argv, int* out_fd) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    dup2(fds[1], STDOUT_FILENO);
    std::vector<char*> cargv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  close(fds[1]);
  *out_fd = fds[0];
  return pid;
}

std::optional<int> WaitPid(pid_t pid, absl::Duration timeout) {
  // A pidfd becomes readable when the child exits: no polling loop.
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    close(pidfd);
    if (ready <= 0) return std::nullopt;
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

DaemonProcess::DaemonProcess(std::vector<std::string> args, bool add_listen_flags) {
  std::vector<std::string> argv = {InferdBinary()};
  if (add_listen_flags) {
    argv.push_back("--grpc-listen=127.0.0.1:0");
    argv.push_back("--metrics-listen=127.0.0.1:0");
  }
  argv.insert(argv.end(), args.begin(), args.end());
  int fd = -1;
  pid_ = Spawn(argv, &fd);
  if (pid_ < 0) return;
  reader_ = std::thread([this, fd] { ReadLoop(fd); });
  // Wait for the "serving" line (or EOF).
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return eof_ || absl::StrContains(stderr_, "inferd: serving:");
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(30));
  std::smatch m;
  static const std::regex kGrpc(R"(gRPC listening on \S+ \(port (\d+)\))");
  static const std::regex kMetrics(R"(metrics on \S+ \(port (\d+)\))");
  if (absl::StrContains(stderr_, "inferd: serving:")) {
    if (std::regex_search(stderr_, m, kGrpc)) grpc_port_ = std::stoi(m[1]);
    if (std::regex_search(stderr_, m, kMetrics)) metrics_port_ = std::stoi(m[1]);
  }
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0 && !exit_code_) {
    kill(pid_, SIGKILL);
    exit_code_ = WaitPid(pid_, absl::Seconds(10));
  }
  if (reader_.joinable()) reader_.join();
}

void DaemonProcess::ReadLoop(int fd) {
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    absl::MutexLock lock(&mu_);
    stderr_.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  absl::MutexLock lock(&mu_);
  eof_ = true;
}

void DaemonProcess::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

std::optional<int> DaemonProcess::Wait(absl::Duration timeout) {
  if (!exit_code_) exit_code_ = WaitPid(pid_, timeout);
  return exit_code_;
}

std::string DaemonProcess::Stderr() {
  absl::MutexLock lock(&mu_);
  return stderr_;
}

ConfiguredDaemon::ConfiguredDaemon(const std::string& config_yaml, int host_devices)
    : config_path_(WriteTempFile(config_yaml)) {
  std::vector<std::string> args = DeviceArgs(host_devices);
  args.push_back("--config=" + config_path_);
  process_ = std::make_unique<DaemonProcess>(args);
}

ConfiguredDaemon::~ConfiguredDaemon() {
  if (!stopped_) (void)Stop();
  std::remove(config_path_.c_str());
}

std::optional<int> ConfiguredDaemon::Stop() {
  stopped_ = true;
  process_->Signal(SIGTERM);
  return process_->Wait(absl::Seconds(30));
}

CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout) {
  int fd = -1;
  pid_t pid = Spawn(argv, &fd);
  CommandResult r;
  std::thread reader([&] {
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) r.output.append(buf, static_cast<size_t>(n));
    close(fd);
  });
  std::optional<int> code = WaitPid(pid, timeout);
  if (!code) {
    kill(pid, SIGKILL);
    code = WaitPid(pid, absl::Seconds(5));
  }
  reader.join();
  r.exit_code = code.value_or(-1);
  return r;
}

std::string HttpGet(int port, const std::string& path) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(s);
    return "";
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  (void)!write(s, req.data(), req.size());
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(s, buf, sizeof(buf))) > 0) resp.append(buf, static_cast<size_t>(n));
  close(s);
  const size_t body = resp.find("\r\n\r\n");
  return body == std::string::npos ? resp : resp.substr(body + 4);
}

std::string WriteTempFile(const std::string& contents, const std::string& suffix) {
  std::string tmpl = "/tmp/inferd_test_XXXXXX" + suffix;
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = mkstemps(buf.data(), static_cast<int>(suffix.size()));
  if (fd < 0) return "";
  (void)!write(fd, contents.data(), contents.size());
  close(fd);
  return std::string(buf.data());
}

}  // namespace inferd::testing
