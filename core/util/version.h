// The inferd version. The build defines INFERD_VERSION from the project's
// version (CMakeLists.txt) for the targets that report it; elsewhere it
// reads "0.0.0". Include this rather than testing the macro.
#ifndef INFERD_CORE_UTIL_VERSION_H_
#define INFERD_CORE_UTIL_VERSION_H_

#ifndef INFERD_VERSION
#define INFERD_VERSION "0.0.0"
#endif

namespace inferd {

inline constexpr char kVersion[] = INFERD_VERSION;

}  // namespace inferd

#endif  // INFERD_CORE_UTIL_VERSION_H_
