// inferctl's command groups and the small flag parser they share. Each
// command takes its arguments after the command name and returns the
// process exit code: 0 on success, 1 when the daemon answers an error
// (printed as "inferctl: CODE: message") or the result is a failure (a task
// that did not succeed), 2 for bad arguments (the message names the flag).
#ifndef INFERD_CLIENTS_INFERCTL_COMMANDS_H_
#define INFERD_CLIENTS_INFERCTL_COMMANDS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "clients/cpp/inferd_client.h"

namespace inferd::inferctl {

// One "--name=value" flag of a command and where its value goes. Bool flags
// also accept the bare "--name"; list flags may repeat.
struct Flag {
  std::string name;  // without the leading "--"
  std::variant<std::string*, int64_t*, double*, bool*, std::vector<std::string>*,
               std::optional<int64_t>*>
      target;
};

// Splits `args` into the declared flags and positional arguments. On an
// unknown flag or a value of the wrong type prints
// "inferctl <command>: --flag: reason" and returns false.
bool ParseFlags(absl::string_view command, const std::vector<std::string>& args,
                const std::vector<Flag>& flags, std::vector<std::string>* positional);

// Prints "inferctl <command>: <message>" to stderr; returns 2.
int UsageError(absl::string_view command, absl::string_view message);
// Prints "inferctl: CODE: message" to stderr; returns 1.
int Fail(const absl::Status& status);

// Parses "N" or "host" (-1) for --to / device arguments.
std::optional<int> ParseDevice(absl::string_view text);
// Formats a byte count as "1.5 MiB" (or "512 B").
std::string FormatBytes(uint64_t bytes);
// Formats a Unix-millisecond time as UTC "HH:MM:SS.mmm" ("-" for 0).
std::string FormatTimeMs(int64_t unix_ms);

// The command groups (clients/inferctl/*_commands.cc).
int HealthCommand(InferdClient& client, const std::vector<std::string>& args);
int ModelsCommand(InferdClient& client, const std::vector<std::string>& args);
int InferCommand(InferdClient& client, const std::vector<std::string>& args);
int BenchCommand(const ClientOptions& options, const std::vector<std::string>& args);
int ReportCommand(InferdClient& client, const std::vector<std::string>& args);
int TensorsCommand(InferdClient& client, const std::vector<std::string>& args);
int TasksCommand(InferdClient& client, const std::vector<std::string>& args);
int TransferCommand(InferdClient& client, const std::vector<std::string>& args);
int CollectiveCommand(InferdClient& client, const std::vector<std::string>& args);
int StatsCommand(InferdClient& client, const std::vector<std::string>& args);

}  // namespace inferd::inferctl

#endif  // INFERD_CLIENTS_INFERCTL_COMMANDS_H_
