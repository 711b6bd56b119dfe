#include "harness/workload.h"

#include <algorithm>
#include <random>

#include <fmt/format.h>

#include "client/client.h"

namespace coord::harness {

namespace {

const auto kStart = std::chrono::steady_clock::now();

// What a worker last saw of each key, to aim its compare-and-sets.
struct Seen {
  std::vector<std::uint64_t> version;
  std::vector<std::string> value;
};

Model::Input random_input(std::mt19937_64& rng, int keys, const Seen& seen, int group, int worker,
                          std::uint64_t& values) {
  auto below = [&](std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng); };
  const int key = static_cast<int>(below(static_cast<std::uint64_t>(keys)));
  const std::size_t slot = static_cast<std::size_t>(group * keys + key);
  const std::string value = fmt::format("w{}.{}", worker, ++values);
  Model::Input in;
  const std::uint64_t pick = below(100);
  if (pick < 35) {
    in.kind = Model::Kind::Get;
    in.key = key;
    return in;
  }
  in.kind = Model::Kind::Txn;
  if (pick < 65) {
    in.success.push_back({Model::OpType::Put, key, value});
  } else if (pick < 72) {
    in.success.push_back({Model::OpType::Create, key, value});
  } else if (pick < 78) {
    in.success.push_back({Model::OpType::Delete, key, {}});
  } else if (pick < 90) {
    in.compares.push_back({key, Model::Target::Version, seen.version[slot], {}});
    in.success.push_back({Model::OpType::Put, key, value});
  } else {
    in.compares.push_back({key, Model::Target::Value, 0, seen.value[slot]});
    in.success.push_back({Model::OpType::Put, key, value});
  }
  return in;
}

void remember(Seen& seen, int keys, const Record& r) {
  if (!r.output || r.input.kind != Model::Kind::Get) return;
  const std::size_t slot = static_cast<std::size_t>(r.group * keys + r.input.key);
  seen.version[slot] = r.output->exists ? r.output->version : 0;
  seen.value[slot] = r.output->exists ? r.output->value : std::string();
}

ClientOptions client_options(const WorkloadOptions& o, std::vector<std::string> endpoints) {
  ClientOptions c;
  c.endpoints = std::move(endpoints);
  c.call_timeout = o.call_timeout;
  c.attempt_timeout = o.attempt_timeout;
  c.write_lanes = 1;  // one session per worker: what bounds its unknown writes (history.h)
  return c;
}

// Performs one operation and returns its output (none: unknown or unanswered).
std::optional<Model::Output> perform(Client& client, int group, const Model::Input& in, bool serializable) {
  CallOptions call;
  call.serializable = serializable;
  if (in.kind == Model::Kind::Get) {
    const ReadOutcome<kv::Node> out = client.get(Model::key_path(group, in.key), call).get();
    if (!out.reached) return std::nullopt;
    return Model::from_get(out.read);
  }
  if (in.kind == Model::Kind::List) {
    const ReadOutcome<kv::ListPage> out = client.list(Model::group_path(group), kv::ListOptions{}, call).get();
    if (!out.reached) return std::nullopt;
    return Model::from_list(out.read);
  }
  const WriteOutcome out = client.write(Model::to_txn(group, in), call).get();
  if (!out.result) return std::nullopt;
  return Model::from_result(in, *out.result);
}

}  // namespace

std::uint64_t now_us() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - kStart).count());
}

Workload::Workload(WorkloadOptions options, History& history) : options_(std::move(options)), history_(history) {
  options_.keys = std::clamp(options_.keys, 1, Model::kKeysMax);
}

Workload::~Workload() { stop(); }

void Workload::start() {
  for (int w = 1; w <= options_.workers; ++w) threads_.emplace_back([this, w] { run(w); });
  threads_.emplace_back([this] { compact(); });
}

void Workload::stop() {
  stopping_ = true;
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void Workload::run(int worker) {
  std::vector<std::string> endpoints = options_.endpoints;
  if (options_.stale_reads || options_.pin_workers) {
    endpoints = {options_.endpoints[static_cast<std::size_t>(worker - 1) % options_.endpoints.size()]};
  } else {
    std::rotate(endpoints.begin(), endpoints.begin() + (worker - 1) % static_cast<int>(endpoints.size()),
                endpoints.end());
  }
  Client client(client_options(options_, std::move(endpoints)));
  std::mt19937_64 rng(options_.seed * 1000 + static_cast<std::uint64_t>(worker));
  const auto slots = static_cast<std::size_t>(options_.groups * options_.keys);
  Seen seen{std::vector<std::uint64_t>(slots, 0), std::vector<std::string>(slots)};
  std::uint64_t values = 0;
  while (!stopping_) {
    Record r;
    r.client = worker;
    r.group = static_cast<int>(std::uniform_int_distribution<int>(0, options_.groups - 1)(rng));
    r.input = random_input(rng, options_.keys, seen, r.group, worker, values);
    r.write = r.input.kind == Model::Kind::Txn;
    r.call_us = now_us();
    r.output = perform(client, r.group, r.input, options_.stale_reads);
    r.ret_us = now_us();
    remember(seen, options_.keys, r);
    history_.add(std::move(r));
    if (options_.think_ms > 0) {
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::uniform_int_distribution<int>(0, options_.think_ms)(rng)));
    }
  }
}

void Workload::compact() {
  Client client(client_options(options_, options_.endpoints));
  auto next = std::chrono::steady_clock::now() + options_.compact_every;
  while (!stopping_) {
    if (std::chrono::steady_clock::now() < next) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    next = std::chrono::steady_clock::now() + options_.compact_every;
    const ReadOutcome<kv::Node> root = client.get("/").get();
    if (!root.reached || root.read.revision <= options_.compact_keep_revisions) continue;
    // Its outcome does not matter: a compaction that fails is retried at the next round.
    const WriteOutcome out = client.write(kv::Compact{root.read.revision - options_.compact_keep_revisions}).get();
    if (out.result && out.result->ok()) ++compactions_;
  }
}

int Workload::read_back(const WorkloadOptions& options, History& history, std::chrono::seconds timeout) {
  Client client(client_options(options, options.endpoints));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int unanswered = 0;
  for (int g = 0; g < options.groups; ++g) {
    std::vector<Model::Input> reads;
    Model::Input list;
    list.kind = Model::Kind::List;
    reads.push_back(list);
    for (int k = 0; k < std::clamp(options.keys, 1, Model::kKeysMax); ++k) {
      Model::Input get;
      get.kind = Model::Kind::Get;
      get.key = k;
      reads.push_back(get);
    }
    for (const Model::Input& in : reads) {
      Record r;
      r.group = g;
      r.input = in;
      do {
        r.call_us = now_us();
        r.output = perform(client, g, in, false);
        r.ret_us = now_us();
      } while (!r.output && std::chrono::steady_clock::now() < deadline);
      if (!r.output) ++unanswered;
      history.add(std::move(r));
    }
  }
  return unanswered;
}

}  // namespace coord::harness
