#include "harness/network.h"

#include <fmt/format.h>

#include <sstream>
#include <stdexcept>

#include "harness/command.h"

namespace coord::harness {

namespace {

// A 2 Mbit/s token bucket whose queue holds up to `delay_ms` of traffic: well below what a
// member replicates under the harness's load, so its packets wait up to that long, and beyond
// it are dropped.
std::vector<std::string> tbf_args(int delay_ms) {
  return {"tbf", "rate", "2mbit", "burst", "16kb", "latency", fmt::format("{}ms", delay_ms)};
}

// A subnet per prefix, so two harnesses with different prefixes do not share addresses.
int subnet_of(const std::string& prefix) {
  unsigned h = 0;
  for (char c : prefix) h = h * 31 + static_cast<unsigned char>(c);
  return 100 + static_cast<int>(h % 100);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The host's FORWARD rule accepting traffic between the bridge's ports (`action`: -I or -D).
std::vector<std::string> forward_rule(const std::string& prefix, const std::string& action) {
  const std::string bridge = prefix + "-br";
  return {"iptables", "-w", action, "FORWARD", "-i", bridge, "-o", bridge,
          "-m", "comment", "--comment", "coord-faults-" + prefix, "-j", "ACCEPT"};
}

}  // namespace

Network::Network(std::string prefix, int members)
    : prefix_(std::move(prefix)), members_(members), subnet_(subnet_of(prefix_)) {
  if (prefix_.empty() || prefix_.size() > 8) throw std::invalid_argument("network prefix: 1 to 8 characters");
  try {
    create();
    netem_ = probe_qdisc({"netem", "delay", "1ms"});
    tbf_ = !netem_ && probe_qdisc(tbf_args(20));
  } catch (...) {
    destroy();
    throw;
  }
}

Network::~Network() { destroy(); }

std::string Network::ns(int member) const { return fmt::format("{}-m{}", prefix_, member); }

std::string Network::address(int member) const { return fmt::format("10.{}.0.{}", subnet_, 10 + member); }

void Network::create() {
  const std::string bridge = prefix_ + "-br";
  must_run({"ip", "link", "add", bridge, "type", "bridge"});
  must_run({"ip", "addr", "add", fmt::format("10.{}.0.1/24", subnet_), "dev", bridge});
  must_run({"ip", "link", "set", bridge, "up"});
  // With br_netfilter loaded, bridged packets pass the host's FORWARD chain, whose policy may be
  // DROP (docker): let the members' traffic through, marked so the cleanup finds the rule.
  must_run(forward_rule(prefix_, "-I"));
  for (int i = 1; i <= members_; ++i) {
    const std::string host_side = fmt::format("{}-h{}", prefix_, i);
    const std::string peer_side = fmt::format("{}-p{}", prefix_, i);
    must_run({"ip", "netns", "add", ns(i)});
    must_run({"ip", "link", "add", host_side, "type", "veth", "peer", "name", peer_side});
    must_run({"ip", "link", "set", peer_side, "netns", ns(i)});
    must_run({"ip", "link", "set", host_side, "master", bridge});
    must_run({"ip", "link", "set", host_side, "up"});
    must_run_in(ns(i), {"ip", "link", "set", peer_side, "name", "eth0"});
    must_run_in(ns(i), {"ip", "addr", "add", address(i) + "/24", "dev", "eth0"});
    must_run_in(ns(i), {"ip", "link", "set", "eth0", "up"});
    must_run_in(ns(i), {"ip", "link", "set", "lo", "up"});
  }
}

void Network::destroy() {
  // Deleting a namespace deletes its end of the veth, and with it the pair.
  for (int i = 1; i <= members_; ++i) (void)run_command({"ip", "netns", "del", ns(i)});
  (void)run_command({"ip", "link", "del", prefix_ + "-br"});
  for (int i = 0; i < 100 && run_command(forward_rule(prefix_, "-D")).status == 0; ++i) {
  }
}

void Network::remove_leftovers(const std::string& prefix) {
  for (int i = 0; i < 100 && run_command(forward_rule(prefix, "-D")).status == 0; ++i) {
  }
  for (const std::string& line : lines_of(run_command({"ip", "netns", "list"}).output)) {
    const std::string name = line.substr(0, line.find(' '));
    if (name.rfind(prefix + "-m", 0) == 0) (void)run_command({"ip", "netns", "del", name});
  }
  for (const std::string& line : lines_of(run_command({"ip", "-o", "link", "show"}).output)) {
    // "7: NAME@peer: <...>" or "7: NAME: <...>"
    const auto start = line.find(": ");
    if (start == std::string::npos) continue;
    const std::string rest = line.substr(start + 2);
    const std::string name = rest.substr(0, rest.find_first_of(":@"));
    if (name.rfind(prefix + "-", 0) == 0) (void)run_command({"ip", "link", "del", name});
  }
}

bool Network::probe_qdisc(const std::vector<std::string>& qdisc) {
  std::vector<std::string> argv{"tc", "qdisc", "add", "dev", "eth0", "root"};
  argv.insert(argv.end(), qdisc.begin(), qdisc.end());
  if (run_in(ns(1), argv).status != 0) return false;
  must_run_in(ns(1), {"tc", "qdisc", "del", "dev", "eth0", "root"});
  return true;
}

void Network::cut(int from, int to) {
  must_run_in(ns(to), {"iptables", "-w", "-A", "INPUT", "-s", address(from), "-j", "DROP"});
}

void Network::heal_partitions() {
  for (int i = 1; i <= members_; ++i) must_run_in(ns(i), {"iptables", "-w", "-F", "INPUT"});
}

void Network::degrade(int member, const LinkFault& f) {
  restore(member);
  if (netem_) {
    std::vector<std::string> argv{"tc", "qdisc", "add", "dev", "eth0", "root", "netem"};
    if (f.delay_ms > 0) {
      argv.insert(argv.end(), {"delay", fmt::format("{}ms", f.delay_ms), fmt::format("{}ms", f.jitter_ms)});
    }
    if (f.loss_pct > 0) argv.insert(argv.end(), {"loss", fmt::format("{}%", f.loss_pct)});
    if (f.duplicate_pct > 0) argv.insert(argv.end(), {"duplicate", fmt::format("{}%", f.duplicate_pct)});
    if (f.reorder_pct > 0 && f.delay_ms > 0) argv.insert(argv.end(), {"reorder", fmt::format("{}%", f.reorder_pct)});
    must_run_in(ns(member), argv);
    return;
  }
  if (tbf_ && f.delay_ms > 0) {
    std::vector<std::string> argv{"tc", "qdisc", "add", "dev", "eth0", "root"};
    const std::vector<std::string> tbf = tbf_args(f.delay_ms);
    argv.insert(argv.end(), tbf.begin(), tbf.end());
    must_run_in(ns(member), argv);
  }
  for (int other = 1; other <= members_; ++other) {
    if (other == member) continue;
    if (f.loss_pct > 0) {
      must_run_in(ns(member), {"iptables", "-w", "-A", "OUTPUT", "-d", address(other), "-m", "statistic", "--mode",
                               "random", "--probability", fmt::format("{:.2f}", f.loss_pct / 100.0), "-j", "DROP"});
    }
    if (f.duplicate_pct > 0) {
      must_run_in(ns(member), {"iptables", "-w", "-t", "mangle", "-A", "POSTROUTING", "-d", address(other), "-m",
                               "statistic", "--mode", "random", "--probability",
                               fmt::format("{:.2f}", f.duplicate_pct / 100.0), "-j", "TEE", "--gateway",
                               address(other)});
    }
  }
}

void Network::restore(int member) {
  (void)run_in(ns(member), {"tc", "qdisc", "del", "dev", "eth0", "root"});
  must_run_in(ns(member), {"iptables", "-w", "-F", "OUTPUT"});
  must_run_in(ns(member), {"iptables", "-w", "-t", "mangle", "-F", "POSTROUTING"});
}

}  // namespace coord::harness
