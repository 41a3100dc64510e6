#include "core/shm/shared_memory_registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/util/checked_math.h"

namespace inferd {
namespace {

constexpr size_t kMaxNameBytes = 128;

std::string Shown(absl::string_view s) {
  return absl::CHexEscape(s.substr(0, std::min<size_t>(s.size(), 64)));
}

}  // namespace

bool IsValidRegionName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

absl::Status SharedMemoryRegistry::CheckName(absl::string_view name) const {
  if (!IsValidRegionName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "name: '", Shown(name), "' is not a region name ([A-Za-z0-9_.:-], 1 to ", kMaxNameBytes,
        " bytes)"));
  }
  absl::MutexLock lock(&mu_);
  return CheckFreeLocked(name);
}

absl::Status SharedMemoryRegistry::CheckFreeLocked(absl::string_view name) const {
  if (regions_.contains(name)) {
    return absl::AlreadyExistsError(
        absl::StrCat("name: shared-memory region '", name, "' is already registered"));
  }
  if (static_cast<int>(regions_.size()) >= options_.max_regions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "shared_memory.max_regions: ", options_.max_regions, " regions are registered"));
  }
  return absl::OkStatus();
}

absl::Status SharedMemoryRegistry::Insert(std::shared_ptr<SharedMemoryRegion> region) {
  absl::MutexLock lock(&mu_);
  const std::string& name = region->info_.name;
  // Checked again: another registration may have raced this one's mapping.
  if (absl::Status st = CheckFreeLocked(name); !st.ok()) return st;
  regions_.emplace(name, std::move(region));
  return absl::OkStatus();
}

absl::Status SharedMemoryRegistry::RegisterSystem(absl::string_view name, absl::string_view key,
                                                  uint64_t offset, uint64_t byte_size) {
  if (absl::Status st = CheckName(name); !st.ok()) return st;
  absl::StatusOr<std::unique_ptr<PosixShmMapping>> mapping =
      PosixShmMapping::Map(key, offset, byte_size, "key");
  if (!mapping.ok()) return mapping.status();
  auto region = std::make_shared<SharedMemoryRegion>();
  region->info_ = RegionInfo{std::string(name), RegionKind::kSystem, std::string(key), offset,
                             byte_size, 0};
  region->base_ = (*mapping)->data();
  region->mapping_ = *std::move(mapping);
  return Insert(std::move(region));
}

absl::Status SharedMemoryRegistry::RegisterCuda(absl::string_view name,
                                                absl::string_view raw_handle, int64_t device_id,
                                                uint64_t byte_size) {
  if (absl::Status st = CheckName(name); !st.ok()) return st;
  if (byte_size == 0) return absl::InvalidArgumentError("byte_size: must be > 0");
  if (raw_handle.size() != Device::kIpcHandleBytes) {
    return absl::InvalidArgumentError(absl::StrCat("raw_handle: ", raw_handle.size(),
                                                   " bytes; an IPC handle has ",
                                                   Device::kIpcHandleBytes));
  }
  // CUDA ordinals name GPUs; a daemon without GPUs takes host device numbers.
  Device* device = nullptr;
  const bool any_cuda = std::any_of(options_.devices.begin(), options_.devices.end(),
                                    [](Device* d) { return d->info().kind == DeviceKind::kCuda; });
  for (Device* d : options_.devices) {
    const bool kind_ok = any_cuda ? d->info().kind == DeviceKind::kCuda : true;
    if (kind_ok && d->info().ordinal == device_id) device = d;
  }
  if (device == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("device_id: ", device_id, " is not a device this daemon drives"));
  }
  absl::StatusOr<std::unique_ptr<ImportedMemory>> imported =
      device->OpenIpcMemory(raw_handle, byte_size);
  if (!imported.ok()) return imported.status();
  auto region = std::make_shared<SharedMemoryRegion>();
  region->info_ = RegionInfo{std::string(name), RegionKind::kCuda, "", 0, byte_size, device_id};
  region->base_ = static_cast<uint8_t*>((*imported)->data());
  region->device_ = device;
  region->imported_ = *std::move(imported);
  return Insert(std::move(region));
}

absl::Status SharedMemoryRegistry::Unregister(RegionKind kind, absl::string_view name) {
  // References dropped outside the lock: unmapping may take a while.
  std::vector<std::shared_ptr<const SharedMemoryRegion>> dropped;
  absl::MutexLock lock(&mu_);
  if (name.empty()) {
    for (auto it = regions_.begin(); it != regions_.end();) {
      if (it->second->info().kind == kind) {
        dropped.push_back(std::move(it->second));
        regions_.erase(it++);
      } else {
        ++it;
      }
    }
    return absl::OkStatus();
  }
  auto it = regions_.find(name);
  if (it == regions_.end() || it->second->info().kind != kind) {
    return absl::NotFoundError(absl::StrCat("name: no ",
                                            kind == RegionKind::kCuda ? "CUDA" : "system",
                                            " shared-memory region '", Shown(name),
                                            "' is registered"));
  }
  dropped.push_back(std::move(it->second));
  regions_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RegionInfo>> SharedMemoryRegistry::Status(
    RegionKind kind, absl::string_view name) const {
  std::vector<RegionInfo> out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, region] : regions_) {
      if (region->info().kind != kind || (!name.empty() && key != name)) continue;
      out.push_back(region->info());
    }
  }
  if (!name.empty() && out.empty()) {
    return absl::NotFoundError(absl::StrCat("name: no ",
                                            kind == RegionKind::kCuda ? "CUDA" : "system",
                                            " shared-memory region '", Shown(name),
                                            "' is registered"));
  }
  std::sort(out.begin(), out.end(),
            [](const RegionInfo& a, const RegionInfo& b) { return a.name < b.name; });
  return out;
}

absl::StatusOr<SharedMemoryView> SharedMemoryRegistry::Resolve(absl::string_view name,
                                                               uint64_t offset,
                                                               uint64_t byte_size,
                                                               absl::string_view field) const {
  std::shared_ptr<const SharedMemoryRegion> region;
  {
    absl::MutexLock lock(&mu_);
    auto it = regions_.find(name);
    if (it != regions_.end()) region = it->second;
  }
  if (region == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".shared_memory_region: '",
                                                   Shown(name), "' is not a registered region"));
  }
  const uint64_t size = region->info().byte_size;
  if (offset > size) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".shared_memory_offset: ", offset,
                                                   " is past the end of region '", name, "' (",
                                                   size, " bytes)"));
  }
  if (byte_size > size - offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".shared_memory_byte_size: ", byte_size, " bytes at offset ", offset,
        " run past the end of region '", name, "' (", size, " bytes)"));
  }
  return SharedMemoryView{std::move(region), offset, byte_size};
}

}  // namespace inferd
