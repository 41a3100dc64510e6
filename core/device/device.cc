#include "core/device/device.h"

namespace inferd {
namespace {

thread_local bool async_only = false;

}  // namespace

AsyncOnlyScope::AsyncOnlyScope() : previous_(async_only) { async_only = true; }

AsyncOnlyScope::~AsyncOnlyScope() { async_only = previous_; }

bool AsyncOnlyScope::Active() { return async_only; }

}  // namespace inferd
