// SPDX-License-Identifier: Apache-2.0
// gemm/parallel.hpp: how a GEMM call shares its work between threads (no OpenMP, no pool of
// our own: std::thread per call, or the caller's pool).
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <thread>
#include <vector>

#include "squint/config.hpp"

SQUINT_NAMESPACE_BEGIN

/// How a GEMM call may run in parallel. With threads == 1 (the default) nothing is spawned.
/// With more, the work is cut into up to `threads` tasks (over output-channel panels, or over
/// rows when there are few panels; at least 2^21 multiply-adds each) and run on std::threads
/// started for the call, or on the caller's own pool through `run`, which must call task(i)
/// once for every i in [0, count) and return when all are done. A persistent pool avoids the
/// thread start-up cost that dominates small products.
struct parallelism {
  unsigned threads = 1;
  std::function<void(std::size_t count, const std::function<void(std::size_t)>& task)> run = nullptr;
};

namespace detail {

/// Runs task(0..count-1): on the calling thread, the caller's runner, or count - 1 new threads.
inline void run_tasks(const parallelism& par, std::size_t count, const std::function<void(std::size_t)>& task) {
  if (count <= 1) {
    if (count == 1) task(0);
    return;
  }
  if (par.run) {
    par.run(count, task);
    return;
  }
  std::vector<std::thread> workers;
  workers.reserve(count - 1);
  for (std::size_t t = 1; t < count; ++t) workers.emplace_back(task, t);
  task(0);
  for (std::thread& w : workers) w.join();
}

/// How many tasks an m x n x k product shared over `units` independent pieces gets: at most
/// par.threads and `units`, and none with less than 2^21 multiply-adds (starting a thread costs
/// tens of microseconds, more than a small product takes).
inline std::size_t task_count(const parallelism& par, std::size_t units, std::size_t m, std::size_t n, std::size_t k) {
  const std::size_t work_tasks = std::max<std::size_t>(1, m * n * k >> 21);
  return std::max<std::size_t>(1, std::min<std::size_t>({static_cast<std::size_t>(par.threads), units, work_tasks}));
}

/// Splits columns [0, n) of an m x n x k product into task_count() tasks of whole `step`-wide
/// blocks and runs fn(j0, j1) for each.
template <class F>
void split_columns(const parallelism& par, std::size_t m, std::size_t n, std::size_t k, std::size_t step, F fn) {
  const std::size_t blocks = (n + step - 1) / step;
  const std::size_t tasks = task_count(par, blocks, m, n, k);
  if (tasks == 1) {
    if (n > 0) fn(std::size_t{0}, n);
    return;
  }
  run_tasks(par, tasks, [&](std::size_t t) {
    const std::size_t j0 = std::min(n, blocks * t / tasks * step), j1 = std::min(n, blocks * (t + 1) / tasks * step);
    if (j0 < j1) fn(j0, j1);
  });
}

}  // namespace detail

SQUINT_NAMESPACE_END
