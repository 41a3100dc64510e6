#include "core/config/engine_options.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

TEST(SchedulerOptionsTest, MapsEveryConfigKey) {
  Config c;
  c.device.performance.scheduling_strategy = "memory_aware";
  c.device.performance.max_tasks_per_device = 7;
  c.device.performance.task_timeout = 12.5;
  c.device.performance.enable_task_preemption = true;
  c.device.performance.enable_task_migration = true;
  c.scheduler.max_queue_depth = 33;
  c.scheduler.aging_interval_seconds = 0.5;
  c.scheduler.default_max_retries = 4;
  c.scheduler.retry_backoff_seconds = 0.25;
  c.scheduler.unhealthy_threshold = 9;
  c.scheduler.unhealthy_probe_interval_seconds = 0;
  c.scheduler.max_retained_tasks = 64;
  c.scheduler.watch_buffer_events = 8;
  c.scheduler.enable_dynamic_batching = false;
  c.scheduler.batch_max_queue_delay_us = 250;
  c.scheduler.preferred_batch_sizes = {4, 16};
  c.limits.max_dims = 5;
  absl::StatusOr<SchedulerOptions> o = SchedulerOptionsFromConfig(c);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->strategy, PlacementStrategy::kMemoryAware);
  EXPECT_EQ(o->max_tasks_per_device, 7);
  EXPECT_EQ(o->default_timeout, absl::Milliseconds(12500));
  EXPECT_TRUE(o->enable_preemption);
  EXPECT_TRUE(o->enable_migration);
  EXPECT_EQ(o->max_queue_depth, 33);
  EXPECT_EQ(o->aging_interval, absl::Milliseconds(500));
  EXPECT_EQ(o->default_max_retries, 4);
  EXPECT_EQ(o->retry_backoff, absl::Milliseconds(250));
  EXPECT_EQ(o->unhealthy_threshold, 9);
  EXPECT_EQ(o->unhealthy_probe_interval, absl::ZeroDuration());
  EXPECT_EQ(o->max_retained_tasks, 64u);
  EXPECT_EQ(o->watch_buffer_events, 8u);
  EXPECT_FALSE(o->default_batching.enabled);
  EXPECT_EQ(o->default_batching.max_queue_delay, absl::Microseconds(250));
  EXPECT_THAT(o->default_batching.preferred_batch_sizes, ::testing::ElementsAre(4, 16));
  EXPECT_EQ(o->limits.max_dims, 5);
}

TEST(SchedulerOptionsTest, DefaultsMatchTheEngineDefaults) {
  absl::StatusOr<SchedulerOptions> o = SchedulerOptionsFromConfig(Config{});
  ASSERT_TRUE(o.ok());
  const SchedulerOptions engine;
  EXPECT_EQ(o->strategy, engine.strategy);
  EXPECT_EQ(o->max_queue_depth, engine.max_queue_depth);
  EXPECT_EQ(o->aging_interval, engine.aging_interval);
  EXPECT_EQ(o->default_max_retries, engine.default_max_retries);
  EXPECT_EQ(o->retry_backoff, engine.retry_backoff);
  EXPECT_EQ(o->unhealthy_threshold, engine.unhealthy_threshold);
  EXPECT_EQ(o->unhealthy_probe_interval, engine.unhealthy_probe_interval);
  EXPECT_EQ(o->default_batching.max_queue_delay, engine.default_batching.max_queue_delay);
}

// The daemon runs a lone request on an idle device at once; the plain
// struct (tests, embedders) batches by the delay alone.
TEST(SchedulerOptionsTest, DispatchWhenIdleIsOnInTheConfigAndCanBeTurnedOff) {
  Config c;
  EXPECT_TRUE(SchedulerOptionsFromConfig(c)->default_batching.dispatch_when_idle);
  EXPECT_FALSE(SchedulerOptions{}.default_batching.dispatch_when_idle);
  c.scheduler.batch_dispatch_when_idle = false;
  EXPECT_FALSE(SchedulerOptionsFromConfig(c)->default_batching.dispatch_when_idle);
}

TEST(SchedulerOptionsTest, UnknownStrategyNamesTheKey) {
  Config c;
  c.device.performance.scheduling_strategy = "fastest";
  EXPECT_THAT(SchedulerOptionsFromConfig(c).status().message(),
              ::testing::HasSubstr("scheduling_strategy"));
}

}  // namespace
}  // namespace inferd
