// INFERD_CHECK: aborts with a message when an internal invariant breaks.
// Only for programming errors; anything a client or config can cause is an
// absl::Status instead.
#ifndef INFERD_CORE_UTIL_CHECK_H_
#define INFERD_CORE_UTIL_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define INFERD_CHECK(cond)                                                   \
  do {                                                                       \
    if (!(cond)) [[unlikely]] {                                              \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                   \
      std::abort();                                                          \
    }                                                                        \
  } while (0)

#endif  // INFERD_CORE_UTIL_CHECK_H_
