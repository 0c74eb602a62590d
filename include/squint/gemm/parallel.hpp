// SPDX-License-Identifier: Apache-2.0
// gemm/parallel.hpp: how a GEMM call shares its work between threads (no OpenMP): squint's own
// small persistent pool, or the caller's pool.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "squint/config.hpp"

SQUINT_NAMESPACE_BEGIN

/// How a GEMM call may run in parallel. With threads == 1 (the default) nothing is spawned.
/// With more, the work is cut into up to `threads` tasks (over output-channel panels, or over
/// rows when there are few panels; at least 2^21 multiply-adds each) and run on squint's pool
/// (worker threads started on first use and kept, so a call costs a wake-up, not a thread
/// start), or on the caller's own pool through `run`, which must call task(i) once for every i
/// in [0, count) and return when all are done.
struct parallelism {
  unsigned threads = 1;
  std::function<void(std::size_t count, const std::function<void(std::size_t)>& task)> run = nullptr;
};

namespace detail {

/// Worker threads kept between calls. One job at a time: the caller takes task indices too;
/// workers join a job only while it is published (under the mutex) and the caller returns only
/// after every worker that joined has left it. Workers spin for 100 microseconds after a job (back-to-back layers find them awake) before sleeping on a condition variable. A caller
/// that finds the pool busy (another thread's job, or a task that itself runs in parallel) gets
/// threads of its own instead.
class thread_pool {
 public:
  static thread_pool& instance() {
    static thread_pool pool;
    return pool;
  }

  /// Runs task(0..count-1) on up to count - 1 workers and the calling thread; false (nothing
  /// run) when the pool is busy.
  bool try_run(std::size_t count, const std::function<void(std::size_t)>& task) {
    std::unique_lock<std::mutex> busy(job_mutex_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    job j{&task, count};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (workers_.size() + 1 < count) workers_.emplace_back([this] { work(); });
      job_ = &j;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    j.drain();
    while (j.done.load(std::memory_order_acquire) < count) std::this_thread::yield();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = nullptr;  // no worker joins from now on
    }
    while (j.active.load(std::memory_order_acquire) > 0) std::this_thread::yield();
    return true;
  }

  ~thread_pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (std::thread& w : workers_) w.join();
  }

 private:
  struct job {
    const std::function<void(std::size_t)>* task;
    std::size_t count;
    std::atomic<std::size_t> next{0}, done{0}, active{0};

    void drain() {
      for (std::size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
        (*task)(i);
        done.fetch_add(1, std::memory_order_release);
      }
    }
  };

  thread_pool() = default;

  void work() {
    std::size_t seen = 0;
    for (;;) {
      const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(100);
      while (generation_.load(std::memory_order_acquire) == seen && std::chrono::steady_clock::now() < spin_until)
        std::this_thread::yield();
      job* j = nullptr;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        seen = generation_.load(std::memory_order_acquire);
        if (stop_) return;
        j = job_;
        if (j != nullptr) j->active.fetch_add(1);
      }
      if (j != nullptr) {
        j->drain();
        j->active.fetch_sub(1, std::memory_order_release);
      }
    }
  }

  std::mutex job_mutex_, mutex_;
  std::condition_variable wake_;
  std::vector<std::thread> workers_;
  job* job_ = nullptr;
  std::atomic<std::size_t> generation_{0};
  bool stop_ = false;
};

/// Runs task(0..count-1): on the calling thread, the caller's runner, or squint's pool.
inline void run_tasks(const parallelism& par, std::size_t count, const std::function<void(std::size_t)>& task) {
  if (count <= 1) {
    if (count == 1) task(0);
    return;
  }
  if (par.run) {
    par.run(count, task);
    return;
  }
  if (thread_pool::instance().try_run(count, task)) return;
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
