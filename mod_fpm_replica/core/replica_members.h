// A replica's balancer members derived from its FpmReplica line, in the one
// place the directive handler, the probe lane, the slot binding and the
// supervisor's plan take them from: primary and alternate, their routes,
// worker names, BalancerMember line, probe worker and shared slot key.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config_parse.h"
#include "shared_state.h"
#include "supervisor_plan.h"

namespace fpmr {

// One mod_proxy balancer member of a replica. Every replica has its primary
// member (its configured socket); a supervised replica on a unix socket also
// has an alternate one ("<socket>.alt"), so its replacement can start and
// become ready while the old master still serves. The MemberPlan part (slot,
// socket, status socket) is what the supervisor is sent of it.
struct ReplicaMember : MemberPlan {
    int replica = 0;                 // index of the replica in its vhost, in declaration order
    bool alternate = false;
    std::optional<SocketSpec> probe;
    std::string route;               // "a", or "a.alt" ('.' never occurs in a name)
    // mod_proxy's worker name, one per member ("fpmr-1a2b3c4d-a",
    // "fpmr-1a2b3c4d-a-alt"): mod_proxy collapses unix-socket workers that
    // share one ("Sharing worker").
    std::string worker_host;
};

// The member of replica number `index` (`spec`) of the vhost `vhost_id`
// ("fpmr-1a2b3c4d"): its primary, or its alternate. nullopt for the
// alternate of a replica on a TCP socket, which restarts in place.
std::optional<ReplicaMember> replica_member(const std::string& vhost_id, int index,
                                            const ReplicaSpec& spec, bool alternate);
// Every member the replica has: the primary, then, when it is supervised,
// the alternate (unix sockets only).
std::vector<ReplicaMember> replica_members(const std::string& vhost_id, int index,
                                           const ReplicaSpec& spec, bool supervised);

// The BalancerMember arguments declaring `member` in `balancer_url`:
// "balancer://fpmr-1a2b3c4d unix:/run/a.sock|fcgi://fpmr-1a2b3c4d-a route=a retry=1"
// (route= maps a worker back to its member; retry= keeps mod_proxy's own
// hold-off equal to ours, in the whole seconds it takes).
std::string balancer_member_arguments(const std::string& balancer_url, const ReplicaMember& member);

// The mod_proxy URL of the member's probe pool (its worker named after the
// member's, with "-probe"); "" without a probe pool.
std::string probe_proxy_url(const ReplicaMember& member);

// The key binding the member to a shared slot: the vhost's own key, the
// route and a hash of the socket ("<vhost key>|a|<16 hex digits>"). Stable
// across graceful restarts for an unchanged replica; a replica that moves to
// another socket is another member, whose old master the supervisor drains
// while the new one starts.
std::string member_slot_key(const std::string& vhost_key, const ReplicaMember& member);

// The state a freshly claimed slot starts in: a supervised replica takes no
// request until the supervisor has seen it answer; one started by someone
// else is assumed up; an alternate member serves only during a replacement.
ReplicaState initial_member_state(const ReplicaMember& member, bool supervised);

}  // namespace fpmr
