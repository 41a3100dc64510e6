#include "core/memory/tensor_store.h"

#include <atomic>
#include <set>
#include <thread>

#include "absl/synchronization/notification.h"
#include "core/device/host_device.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

class TensorStoreTest : public ::testing::Test {
 protected:
  TensorStoreTest() : store_(&clock_, Options()) {}
  static TensorStoreOptions Options() {
    TensorStoreOptions o;
    o.default_lease = absl::Seconds(60);
    o.max_lease = absl::Hours(1);
    return o;
  }
  TensorInfo Add(const std::string& owner = "client-a", int device = 0,
                 absl::Duration lease = absl::ZeroDuration(), void* ptr = nullptr) {
    NewTensor t;
    t.dtype = DataType::kFp32;
    t.shape = {2, 3};
    t.device = device;
    t.byte_size = 24;
    t.owner = owner;
    t.lease = lease;
    t.device_ptr = ptr != nullptr ? ptr : &dummy_;
    auto info = store_.Create(std::move(t));
    EXPECT_TRUE(info.ok()) << info.status();
    return *info;
  }

  FakeClock clock_;
  TensorStore store_;
  int dummy_ = 0;
};

TEST_F(TensorStoreTest, CreateRecordsMetadataAndDefaultLease) {
  const absl::Time start = clock_.Now();
  TensorInfo info = Add();
  EXPECT_TRUE(info.id.valid());
  EXPECT_EQ(info.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(info.lease, absl::Seconds(60));
  EXPECT_EQ(info.lease_expiry, start + absl::Seconds(60));
  EXPECT_EQ(info.created, start);
  EXPECT_EQ(info.pin_count, 0);
  EXPECT_EQ(store_.DeviceUsage(0).tensors, 1u);
  EXPECT_EQ(store_.DeviceUsage(0).bytes, 24u);
}

TEST_F(TensorStoreTest, RejectsLeasesAboveTheMaximum) {
  NewTensor t;
  t.lease = absl::Hours(2);
  EXPECT_EQ(store_.Create(std::move(t)).status().code(), absl::StatusCode::kInvalidArgument);
  TensorInfo info = Add();
  EXPECT_EQ(store_.RenewLease(info.id, absl::Hours(2)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TensorStoreTest, ExpiresOnlyAfterTheLease) {
  TensorInfo info = Add("a", 0, absl::Seconds(10));
  clock_.Advance(absl::Seconds(9));
  EXPECT_TRUE(store_.RemoveExpired(-1).empty());
  clock_.Advance(absl::Seconds(1));
  auto removed = store_.RemoveExpired(-1);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].info.id, info.id);
  EXPECT_EQ(removed[0].device_ptr, &dummy_);
  EXPECT_EQ(store_.Lookup(info.id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_.DeviceUsage(0).tensors, 0u);
}

TEST_F(TensorStoreTest, UseRenewsTheLease) {
  TensorInfo info = Add("a", 0, absl::Seconds(10));
  clock_.Advance(absl::Seconds(8));
  {
    auto pin = store_.Pin(info.id);
    ASSERT_TRUE(pin.ok());
  }
  clock_.Advance(absl::Seconds(8));
  EXPECT_TRUE(store_.RemoveExpired(-1).empty());
  ASSERT_TRUE(store_.RenewLease(info.id, absl::Seconds(30)).ok());
  clock_.Advance(absl::Seconds(29));
  EXPECT_TRUE(store_.RemoveExpired(-1).empty());
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(store_.RemoveExpired(-1).size(), 1u);
}

TEST_F(TensorStoreTest, PinnedTensorIsNeitherExpiredNorRemoved) {
  TensorInfo info = Add("a", 0, absl::Seconds(10));
  auto pin = store_.Pin(info.id);
  ASSERT_TRUE(pin.ok());
  EXPECT_EQ(pin->device_ptr(), &dummy_);
  EXPECT_EQ(store_.Lookup(info.id)->pin_count, 1);
  EXPECT_EQ(store_.DeviceUsage(0).pinned, 1u);
  clock_.Advance(absl::Hours(5));
  EXPECT_TRUE(store_.RemoveExpired(-1).empty());
  auto removed = store_.Remove(info.id);
  EXPECT_EQ(removed.status().code(), absl::StatusCode::kFailedPrecondition);
  pin->Reset();
  EXPECT_EQ(store_.DeviceUsage(0).pinned, 0u);
  EXPECT_TRUE(store_.Remove(info.id).ok());
  EXPECT_EQ(store_.Remove(info.id).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TensorStoreTest, PinsNestAndMove) {
  TensorInfo info = Add();
  auto a = store_.Pin(info.id);
  auto b = store_.Pin(info.id);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(store_.Lookup(info.id)->pin_count, 2);
  TensorPin moved = std::move(*a);
  EXPECT_FALSE(a->valid());
  EXPECT_EQ(store_.Lookup(info.id)->pin_count, 2);
  moved.Reset();
  b->Reset();
  EXPECT_EQ(store_.Lookup(info.id)->pin_count, 0);
}

TEST_F(TensorStoreTest, ListsInPagesWithFilters) {
  std::set<TensorId> all, a_on_1;
  for (int i = 0; i < 25; ++i) {
    const std::string owner = i % 2 == 0 ? "a" : "b";
    const int device = i % 3 == 0 ? 1 : 0;
    TensorInfo info = Add(owner, device);
    all.insert(info.id);
    if (owner == "a" && device == 1) a_on_1.insert(info.id);
  }
  std::set<TensorId> seen;
  TensorListOptions o;
  o.page_size = 10;
  std::vector<size_t> sizes;
  do {
    auto page = store_.List(o);
    ASSERT_TRUE(page.ok()) << page.status();
    sizes.push_back(page->tensors.size());
    for (const TensorInfo& t : page->tensors) ASSERT_TRUE(seen.insert(t.id).second);
    o.page_token = page->next_page_token;
  } while (!o.page_token.empty());
  EXPECT_EQ(sizes, (std::vector<size_t>{10, 10, 5}));
  EXPECT_EQ(seen, all);

  TensorListOptions f;
  f.owner = "a";
  f.device = 1;
  auto page = store_.List(f);
  ASSERT_TRUE(page.ok());
  std::set<TensorId> got;
  for (const TensorInfo& t : page->tensors) got.insert(t.id);
  EXPECT_EQ(got, a_on_1);
  EXPECT_TRUE(page->next_page_token.empty());

  TensorListOptions bad;
  bad.page_token = "not-a-token";
  EXPECT_EQ(store_.List(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TensorStoreTest, RelocateMovesOnlyUnpinnedTensorsOfTheDevice) {
  int a_mem = 0, b_mem = 0, c_mem = 0, new_mem = 0;
  TensorInfo a = Add("x", 0, absl::ZeroDuration(), &a_mem);
  TensorInfo b = Add("x", 0, absl::ZeroDuration(), &b_mem);
  TensorInfo c = Add("x", 1, absl::ZeroDuration(), &c_mem);
  auto pin_b = store_.Pin(b.id);
  ASSERT_TRUE(pin_b.ok());
  store_.Relocate(
      0, nullptr,
      [&](absl::FunctionRef<bool(void*)> movable, absl::FunctionRef<void(void*, void*)> moved) {
        EXPECT_TRUE(movable(&a_mem));
        EXPECT_FALSE(movable(&b_mem));  // pinned
        EXPECT_FALSE(movable(&c_mem));  // other device
        moved(&a_mem, &new_mem);
      });
  EXPECT_EQ(store_.Pin(a.id)->device_ptr(), &new_mem);
  EXPECT_EQ(store_.Pin(c.id)->device_ptr(), &c_mem);
}

// Verifies that the first pin after a move waits for the copy's event.
TEST_F(TensorStoreTest, PinWaitsForAPendingMove) {
  HostDeviceOptions ho;
  ho.inline_when_idle = false;
  HostDevice dev(ho);
  Stream& s = dev.stream(0);
  absl::Notification gate;
  std::atomic<bool> copy_done{false};
  ASSERT_TRUE(s.ThenCallback([&](absl::Status) {
                 gate.WaitForNotification();
                 copy_done = true;
               }).ok());
  std::shared_ptr<Event> ready(dev.CreateEvent());
  ASSERT_TRUE(s.RecordEvent(*ready).ok());
  int old_mem = 0, new_mem = 0;
  TensorInfo a = Add("x", 0, absl::ZeroDuration(), &old_mem);
  store_.Relocate(0, ready,
                  [&](absl::FunctionRef<bool(void*)>, absl::FunctionRef<void(void*, void*)> moved) {
                    moved(&old_mem, &new_mem);
                  });
  bool done_when_pinned = false;
  std::thread t([&] {
    auto pin = store_.Pin(a.id);
    done_when_pinned = copy_done.load();
  });
  gate.Notify();
  t.join();
  EXPECT_TRUE(done_when_pinned);
}

}  // namespace
}  // namespace inferd
