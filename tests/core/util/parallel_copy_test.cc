#include "core/util/parallel_copy.h"

#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace inferd {
namespace {

std::vector<uint8_t> Pattern(size_t n, uint32_t salt) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 2654435761u + salt) >> 13);
  return v;
}

class ParallelCopyTest : public ::testing::TestWithParam<int> {};

TEST_P(ParallelCopyTest, CopiesEveryByteOfOddSizes) {
  ParallelCopy copy(GetParam(), /*min_parallel_bytes=*/4096);
  for (size_t n : {size_t{0}, size_t{1}, size_t{4095}, size_t{4096}, size_t{12289},
                   size_t{(3 << 20) + 7}}) {
    const auto src = Pattern(n, static_cast<uint32_t>(n));
    std::vector<uint8_t> dst(n + 1, 0xAB);  // one guard byte past the end
    copy.Copy(dst.data(), src.data(), n);
    EXPECT_TRUE(std::equal(src.begin(), src.end(), dst.begin())) << n << " bytes";
    EXPECT_EQ(dst[n], 0xAB) << "wrote past the end of " << n << " bytes";
  }
}

TEST_P(ParallelCopyTest, ConcurrentCallersEachGetTheirOwnBytes) {
  ParallelCopy copy(GetParam(), 4096);
  std::vector<std::thread> callers;
  std::vector<int> ok(4, 0);
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&, c] {
      const auto src = Pattern(1 << 20, static_cast<uint32_t>(c));
      std::vector<uint8_t> dst(src.size());
      for (int i = 0; i < 20; ++i) {
        copy.Copy(dst.data(), src.data(), src.size());
        if (dst != src) return;
      }
      ok[static_cast<size_t>(c)] = 1;
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(ok, std::vector<int>(4, 1));
}

TEST_P(ParallelCopyTest, GathersPiecesOfEverySizeInOrder) {
  ParallelCopy copy(GetParam(), 4096);
  // Pieces smaller and larger than a part, empty ones, one spanning parts.
  const std::vector<size_t> sizes = {0, 1, 5000, 4096, 0, 70001, 3, 1 << 20, 12289, 0, 7};
  std::vector<std::vector<uint8_t>> srcs;
  size_t total = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    srcs.push_back(Pattern(sizes[i], static_cast<uint32_t>(i * 977)));
    total += sizes[i];
  }
  std::vector<uint8_t> dst(total + 1, 0xAB);
  std::vector<ParallelCopy::Piece> pieces;
  size_t at = 0;
  for (const auto& s : srcs) {
    pieces.push_back({dst.data() + at, s.data(), s.size()});
    at += s.size();
  }
  copy.Gather(pieces);
  std::vector<uint8_t> want;
  for (const auto& s : srcs) want.insert(want.end(), s.begin(), s.end());
  want.push_back(0xAB);
  EXPECT_EQ(dst, want);
}

INSTANTIATE_TEST_SUITE_P(Threads, ParallelCopyTest, ::testing::Values(1, 2, 3, 7));

}  // namespace
}  // namespace inferd
