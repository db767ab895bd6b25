// A replica's balancer members: routes, worker names, slot keys.
#include "replica_members.h"

#include <cstdio>

#include "selection.h"

namespace fpmr {

std::optional<ReplicaMember> replica_member(const std::string& vhost_id, int index,
                                            const ReplicaSpec& spec, bool alternate) {
    if (alternate && spec.socket.kind != SocketSpec::Kind::Unix) return std::nullopt;
    ReplicaMember m;
    m.replica = index;
    m.alternate = alternate;
    m.socket = alternate ? spec.socket.alternate() : spec.socket;
    if (spec.status) m.status = alternate ? spec.status->alternate() : *spec.status;
    if (spec.probe) m.probe = alternate ? spec.probe->alternate() : *spec.probe;
    m.route = alternate ? spec.name + ".alt" : spec.name;
    m.worker_host = vhost_id + "-" + spec.name + (alternate ? "-alt" : "");
    return m;
}

std::vector<ReplicaMember> replica_members(const std::string& vhost_id, int index,
                                           const ReplicaSpec& spec, bool supervised) {
    std::vector<ReplicaMember> members;
    for (bool alternate : {false, true}) {
        if (alternate && !supervised) continue;
        if (auto m = replica_member(vhost_id, index, spec, alternate)) members.push_back(std::move(*m));
    }
    return members;
}

std::string balancer_member_arguments(const std::string& balancer_url, const ReplicaMember& member) {
    return balancer_url + " " + member.socket.proxy_url(member.worker_host) +
           " route=" + member.route + " retry=" + std::to_string(kRefusedRetryUs / 1000000);
}

std::string probe_proxy_url(const ReplicaMember& member) {
    return member.probe ? member.probe->proxy_url(member.worker_host + "-probe") : std::string();
}

std::string member_slot_key(const std::string& vhost_key, const ReplicaMember& member) {
    // The socket is hashed to bound the key's length.
    char socket_hash[17];
    std::snprintf(socket_hash, sizeof socket_hash, "%016llx",
                  static_cast<unsigned long long>(text_hash(member.socket.text())));
    return vhost_key + "|" + member.route + "|" + socket_hash;
}

ReplicaState initial_member_state(const ReplicaMember& member, bool supervised) {
    if (!supervised) return ReplicaState::Ready;
    return member.alternate ? ReplicaState::Stopped : ReplicaState::Starting;
}

}  // namespace fpmr
