#include "harness/watches.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>

namespace coord::harness {
namespace {

using namespace std::chrono_literals;

constexpr const char* kParent = "/w";
constexpr int kKeys = 8;

std::string key_path(int k) { return fmt::format("{}/k{}", kParent, k); }

}  // namespace

Watches::Watches(WatchesOptions options) : options_(std::move(options)) {}

Watches::~Watches() {
  finishing_ = true;  // no stream is reopened from here on
  stop_writer();
  for (Watcher& w : watchers_) w.client.reset();  // drops the watches with the clients
}

bool Watches::start(std::chrono::seconds timeout) {
  ClientOptions c;
  c.endpoints = options_.endpoints;
  c.call_timeout = options_.call_timeout;
  c.attempt_timeout = options_.attempt_timeout;
  writer_client_ = std::make_unique<Client>(c);
  // The marker makes /w exist and fixes where every stream starts: the revision after it.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (record_.marker_revision == 0 && std::chrono::steady_clock::now() < deadline) {
    kv::Op op = kv::Op::put(kParent, "marker");
    op.parents = true;
    const WriteOutcome out = writer_client_->write(kv::single(std::move(op))).get();
    if (out.result && out.result->ok()) record_.marker_revision = out.result->revision;
  }
  if (record_.marker_revision == 0) return false;
  watchers_.resize(static_cast<std::size_t>(options_.watchers));
  record_.watchers.resize(watchers_.size());
  for (std::size_t i = 0; i < watchers_.size(); ++i) {
    // Each on endpoints in its own order, so the streams start on different members.
    std::vector<std::string> endpoints = options_.endpoints;
    std::rotate(endpoints.begin(), endpoints.begin() + static_cast<std::ptrdiff_t>(i % endpoints.size()),
                endpoints.end());
    ClientOptions wc = c;
    wc.endpoints = std::move(endpoints);
    watchers_[i].client = std::make_unique<Client>(wc);
    watchers_[i].client->post([this, i] { open(i, record_.marker_revision + 1); });
  }
  writer_ = std::thread([this] { write_loop(); });
  return true;
}

void Watches::open(std::size_t index, kv::Revision start) {
  if (finishing_) return;
  Watcher& w = watchers_[index];
  {
    std::lock_guard lock(mutex_);
    record_.watchers[index].push_back(WatchRecord::Segment{start, {}, false, {}});
  }
  kv::WatchRequest request;
  request.filter.kind = kv::WatchKind::Children;
  request.filter.path = kParent;
  request.start_revision = start;
  fencing::WatchCallbacks callbacks;
  callbacks.on_events = [this, index](const std::vector<kv::Event>& events) {
    std::lock_guard lock(mutex_);
    WatchRecord::Segment& s = record_.watchers[index].back();
    for (const kv::Event& e : events) {
      s.events.push_back(WatchRecord::Seen{e.revision, e.path, e.type == kv::EventType::Deleted,
                              e.node ? e.node->value : std::string()});
      ++stats_.events;
    }
  };
  callbacks.on_end = [this, index, client = w.client.get()](const kv::Status& why) {
    kv::Revision next = 0;
    {
      std::lock_guard lock(mutex_);
      WatchRecord::Segment& s = record_.watchers[index].back();
      s.ended = true;
      s.end = why;
      ++stats_.reopened;
      next = std::max(last_delivered(record_, record_.watchers[index]) + 1, s.start);
      // compact_revision is the first revision the history still has.
      if (why.error == kv::Error::Compacted) next = std::max(next, why.compact_revision);
    }
    if (finishing_) return;
    // Not inside the client's callback: a fresh stream from where the judgement can pick up.
    client->post([this, index, next] { open(index, next); });
  };
  w.handle = w.client->watch(std::move(request), std::move(callbacks));
}

void Watches::write_loop() {
  std::mt19937_64 rng(options_.seed * 7919 + 17);
  std::uint64_t n = 0;
  while (!stopping_) {
    const int k = std::uniform_int_distribution<int>(0, kKeys - 1)(rng);
    const bool remove = std::uniform_int_distribution<int>(0, 99)(rng) < 15;
    WatchRecord::Write w{key_path(k), remove, remove ? std::string() : fmt::format("w{}", ++n)};
    kv::Op op = remove ? kv::Op::remove(w.path) : kv::Op::put(w.path, w.value);
    const WriteOutcome out = writer_client_->write(kv::single(std::move(op))).get();
    {
      std::lock_guard lock(mutex_);
      if (!out.result) {
        record_.unknown.push_back(std::move(w));
        ++stats_.writes_unknown;
      } else if (out.result->ok() && out.result->succeeded) {
        record_.acknowledged[out.result->revision] = std::move(w);
        ++stats_.writes_ok;
      }
      // Refused (a delete of a missing key): no event to expect.
    }
    if (options_.think_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, options_.think_ms)(rng)));
    }
  }
}

void Watches::stop_writer() {
  stopping_ = true;
  if (writer_.joinable()) writer_.join();
  writer_client_.reset();
}

void Watches::finish(std::chrono::seconds timeout) {
  stop_writer();
  // Streams the service ends are still reopened while the watchers catch up, not after.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    bool caught_up = true;
    {
      std::lock_guard lock(mutex_);
      const kv::Revision target =
          record_.acknowledged.empty() ? record_.marker_revision : record_.acknowledged.rbegin()->first;
      for (const auto& w : record_.watchers) caught_up = caught_up && last_delivered(record_, w) >= target;
    }
    if (caught_up) break;
    std::this_thread::sleep_for(100ms);
  }
  finishing_ = true;
  for (Watcher& w : watchers_) {
    if (!w.client) continue;
    w.client->run([&] { w.client->cancel_watch(w.handle); });  // the handle lives on the client's thread
  }
}

WatchesStats Watches::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::vector<std::string> Watches::judge() const {
  std::lock_guard lock(mutex_);
  return judge_watches(record_);
}

}  // namespace coord::harness
