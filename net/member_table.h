// Members added at runtime (coordctl member add): their ids, how every replica learns their
// names and peer addresses, and where a replica keeps what it learned.
//
// Ids: members of the initial cluster keep the ids of cluster_config.h (position in the sorted
// --initial-cluster), so existing data directories stay valid. A member added later gets
// member_id_for_name(name): a hash of its name with the top bit set, so it never collides with a
// position id, and the new member computes its own id from its --name without asking anyone.
//
// Names and addresses travel in the membership change itself (raft::ConfChange::context,
// encode_member_context), so every replica learns them in log order. A replica that skipped
// the change (it caught up from a snapshot) learns them from the member's peer hello instead.
// Each replica keeps what it knows in DIR/members (save_member_table), written before the
// change that taught it is marked applied, so a restart still knows every member's address.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/cluster_config.h"
#include "raft/types.h"

namespace coord::net {

raft::NodeId member_id_for_name(std::string_view name);

// "name=<name>\npeer=<host:port>\n"; decoding checks both like --initial-cluster does.
std::string encode_member_context(const MemberConfig& member);
std::optional<MemberConfig> decode_member_context(raft::NodeId id, std::string_view context);

// DIR/members: the replica's member table (sorted by id). load returns nullopt when the file
// does not exist (a data dir from before runtime membership, or no change yet); both throw
// DataDirError (net/data_dir.h) on I/O errors or a damaged file.
void save_member_table(const std::string& data_dir, const std::vector<MemberConfig>& members);
std::optional<std::vector<MemberConfig>> load_member_table(const std::string& data_dir);

}  // namespace coord::net
