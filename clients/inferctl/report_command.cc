// report: inferd.v1.Report's GetPerformanceReport as a table or JSON.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "clients/cpp/proto_text.h"
#include "clients/inferctl/commands.h"
#include "inferd/v1/report.grpc.pb.h"

namespace inferd::inferctl {
namespace {

std::string Mib(uint64_t bytes) { return absl::StrFormat("%.1f MiB", bytes / 1048576.0); }

}  // namespace

int ReportCommand(InferdClient& client, const std::vector<std::string>& args) {
  bool json = false;
  for (const auto& a : args) {
    if (a == "--json")
      json = true;
    else {
      std::fprintf(stderr, "inferctl report: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  auto stub = v1::Report::NewStub(client.channel());
  v1::PerformanceReport report;
  absl::Status st = client.WithRetries(
      [&](grpc::ClientContext* ctx) { return stub->GetPerformanceReport(ctx, {}, &report); });
  if (!st.ok()) return Fail(st);
  if (json) {
    std::printf("%s\n", MessageToJson(report).c_str());
    return 0;
  }
  std::printf("inferd %s report\n\nDEVICES\n", report.version().c_str());
  std::printf("%-4s %-6s %-28s %12s %12s %6s %-8s %-7s\n", "dev", "kind", "name", "mem total",
              "mem free", "util", "health", "active");
  for (const auto& d : report.devices()) {
    std::printf(
        "%-4d %-6s %-28s %12s %12s %6s %-8s %-7s\n", d.device(), d.kind().c_str(),
        d.name().substr(0, 28).c_str(), Mib(d.memory_total_bytes()).c_str(),
        Mib(d.memory_free_bytes()).c_str(),
        d.utilization() < 0 ? "n/a" : absl::StrFormat("%.0f%%", d.utilization() * 100).c_str(),
        d.healthy() ? "healthy" : "FAULTY", d.active() ? "yes" : "no");
    for (const auto& f : d.fault_events()) std::printf("       fault: %s\n", f.c_str());
  }
  std::printf("\nMEMORY\n%-4s %12s %12s %12s %8s %8s %8s %8s\n", "dev", "reserved", "allocated",
              "largest free", "tensors", "frag", "gc runs", "compacts");
  for (const auto& m : report.memory().devices()) {
    std::printf(
        "%-4d %12s %12s %12s %8lu %8.3f %8lu %8lu\n", m.device(), Mib(m.reserved_bytes()).c_str(),
        Mib(m.allocated_bytes()).c_str(), Mib(m.largest_free_block_bytes()).c_str(),
        static_cast<unsigned long>(m.active_tensors()), m.fragmentation(),
        static_cast<unsigned long>(m.gc_runs()), static_cast<unsigned long>(m.compactions()));
  }
  const auto& sc = report.scaling();
  std::printf("\nSCALING\nenabled %s, active devices [%s], desired replicas %d (demand %.2f)\n",
              sc.enabled() ? "yes" : "no", absl::StrJoin(sc.active_devices(), ",").c_str(),
              sc.desired_replicas(), sc.replica_demand());
  if (sc.has_last_decision())
    std::printf("last decision: %s\n", sc.last_decision().reason().c_str());
  if (report.has_communication()) {
    const auto& comm = report.communication();
    std::printf("\nCOMMUNICATION\nnccl %s, active transfers %lu\n",
                comm.nccl_enabled() ? "on" : "off",
                static_cast<unsigned long>(comm.active_transfers()));
    std::printf("%-10s %-16s %12s %10s %7s %10s\n", "link", "kind", "bytes", "transfers", "errors",
                "GB/s");
    for (const auto& l : comm.links()) {
      std::printf("%-10s %-16s %12s %10lu %7lu %10.3f\n", l.link().c_str(),
                  ShortEnumName(v1::LinkKind_descriptor(), l.kind()).c_str(),
                  FormatBytes(l.bytes()).c_str(), static_cast<unsigned long>(l.transfers()),
                  static_cast<unsigned long>(l.errors()), l.bandwidth_bytes_per_second() / 1e9);
    }
  }
  return 0;
}

}  // namespace inferd::inferctl
