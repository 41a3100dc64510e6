// `inferd healthcheck`: an exec probe that asks grpc.health.v1 on a local
// daemon and exits 0 only when it reports SERVING.
#ifndef INFERD_SERVER_HEALTHCHECK_H_
#define INFERD_SERVER_HEALTHCHECK_H_

namespace inferd {

// Returns the process exit code: 0 SERVING, 1 not serving or unreachable,
// 2 bad arguments.
int RunHealthcheck(int argc, const char* const* argv);

}  // namespace inferd

#endif  // INFERD_SERVER_HEALTHCHECK_H_
