// The harness's network: one namespace per member ("<prefix>-m<i>"), each joined to a bridge
// ("<prefix>-br", in the harness's own namespace, where the clients run) by a veth pair
// ("<prefix>-h<i>" on the bridge, eth0 inside). Member i has 10.<subnet>.0.<10+i>; the bridge
// 10.<subnet>.0.1. The host's FORWARD chain gets one ACCEPT rule for the bridge (commented
// "coord-faults-<prefix>"), in case br_netfilter sends bridged packets through a DROP policy.
//
// Faults act inside the members' namespaces, so the clients' own traffic is untouched:
// - partitions are iptables DROP rules on INPUT, by source address (one rule per direction cut);
// - link faults are tc netem on eth0 when the kernel has it (delay, jitter, loss, duplication,
//   reordering); without netem (no sch_netem module) loss and duplication are done by iptables
//   (statistic match, TEE), and delay by a token bucket (tc tbf, 2 Mbit/s) on the member's
//   outgoing traffic, which queues what the member sends for up to the fault's delay and drops
//   what would wait longer: a slow, congested link. Reordering is not available without netem.
// Everything it creates carries the prefix, so remove_leftovers() can find what a killed run
// left behind; the destructor removes what this one made.
#pragma once

#include <string>
#include <vector>

namespace coord::harness {

class Network {
 public:
  Network(std::string prefix, int members);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  // Deletes namespaces, bridge and veths named with `prefix` (a run killed before cleaning up).
  static void remove_leftovers(const std::string& prefix);

  int members() const { return members_; }
  std::string ns(int member) const;           // member is 1-based
  std::string address(int member) const;      // 10.S.0.(10+member)
  bool netem_available() const { return netem_; }
  // Without netem: whether delay comes from a token bucket (tc tbf).
  bool tbf_available() const { return tbf_; }

  // Drops packets from `from` arriving at `to` (one direction).
  void cut(int from, int to);
  // Removes every partition rule.
  void heal_partitions();

  struct LinkFault {
    int delay_ms = 0, jitter_ms = 0;  // jitter: netem only; delay: netem, or tbf's queue bound
    int loss_pct = 0, duplicate_pct = 0;
    int reorder_pct = 0;  // netem only
  };
  // Applies `fault` to member's outgoing traffic to the other members.
  void degrade(int member, const LinkFault& fault);
  void restore(int member);

 private:
  void create();
  void destroy();
  bool probe_qdisc(const std::vector<std::string>& qdisc);

  std::string prefix_;
  int members_;
  int subnet_;
  bool netem_ = false;
  bool tbf_ = false;
};

}  // namespace coord::harness
