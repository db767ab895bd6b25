// The status document's read model: a vhost's figures and each replica's
// state, read from its configuration and the shared blocks into the
// VhostStatus that status_render turns into JSON or Prometheus text.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config_parse.h"
#include "replica_members.h"
#include "shared_state.h"
#include "status_render.h"

namespace fpmr {

// What a vhost's document is read from besides the shared blocks.
struct StatusSources {
    std::string vhost;                                    // "app.local:8080"
    const std::vector<ReplicaSpec>* replicas = nullptr;   // in declaration order
    const std::vector<ReplicaMember>* members = nullptr;  // with their slots bound (-1: none)
    std::optional<std::string> release;       // the release the symlink names now
    std::optional<std::string> release_link;  // FpmReplicaRelease
    bool namespace_mode = false;              // FpmReplicaStablePath
    // Namespace mode with supervision: each member shows the release its
    // master serves (realpath mode: every replica serves the current one).
    bool routes_by_release = false;
    // The pid listening on a socket, for a member whose master the
    // supervisor did not record (started by someone else); 0 when unknown.
    std::function<int32_t(const SocketSpec&)> listener_pid;
    // When set (the Prometheus output): the pool figures of member slot
    // `slot` from its status socket (cached; nullopt: no answer).
    std::function<std::optional<PoolStatus>(int slot, const SocketSpec& status_socket)> pool_status;
};

// Which member a replica shows: the one that serves (ready), else the one
// coming up, else the one going away; the primary on ties. Lower is shown first.
int display_rank(ReplicaState state);

// The document of one vhost. Each replica's state is status_state() of its
// shown member (selection.h: the verdict steering acts on); its counters are
// summed over its members.
VhostStatus read_vhost_status(const StatusSources& sources, const SharedState& shared,
                              int64_t now_us);

}  // namespace fpmr
