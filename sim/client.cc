#include "sim/client.h"

namespace coord::sim {

const char* to_string(ClientReply::Status status) {
  switch (status) {
    case ClientReply::Status::Acked: return "acked";
    case ClientReply::Status::ReadDone: return "read-done";
    case ClientReply::Status::Started: return "started";
    case ClientReply::Status::NotLeader: return "not-leader";
    case ClientReply::Status::Failed: return "failed";
    case ClientReply::Status::Watch: return "watch";
  }
  return "?";
}

}  // namespace coord::sim
