// main() of gpu_tests (replaces gtest_main). Death tests here use the
// "threadsafe" style, which re-executes argv[0] with execv: that needs a
// path, so a binary started through PATH ("gpu_tests") gets its own
// absolute path as argv[0] first.
#include <unistd.h>

#include <climits>

#include "gtest/gtest.h"

int main(int argc, char** argv) {
  static char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    argv[0] = self;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
