// The status document's read model.
#include "status_model.h"

#include <algorithm>

#include "replica_reason.h"
#include "selection.h"

namespace fpmr {

int display_rank(ReplicaState state) {
    switch (state) {
        case ReplicaState::Ready: return 0;
        case ReplicaState::Starting: return 1;
        case ReplicaState::Draining: return 2;
        case ReplicaState::Failed: return 3;
        case ReplicaState::Stopped: return 4;
    }
    return 5;
}

namespace {

// The deploy preparation of the vhost's release symlink, when one was asked.
void read_preparation(const SharedState& shared, const std::string& symlink, VhostStatus* status) {
    int slot = shared.find_release(symlink);
    if (slot < 0) return;
    const TrustedRelease& rs = shared.trusted_release(slot);
    const ReleaseSlot& open = shared.release_slot(slot);
    auto state = static_cast<PrepareState>(rs.prepare_state.load());
    if (open.prepare_requests.load() != rs.prepare_handled.load()) {
        // Asked, not yet taken up by the supervisor.
        status->prepared_release = read_locked_string(open.requested_seq, open.requested, kReleaseLength);
        status->prepared_state = prepare_state_name(PrepareState::Starting);
    } else if (state != PrepareState::None) {
        status->prepared_release = read_locked_string(rs.prepared_seq, rs.prepared, kReleaseLength);
        status->prepared_state = prepare_state_name(state);
    }
    std::optional<std::string> previous = read_locked_string(rs.previous_seq, rs.previous, kReleaseLength);
    if (previous && !previous->empty()) status->previous_release = previous;
}

ReplicaStatus read_replica(const StatusSources& sources, const SharedState& shared, int64_t now_us,
                           int index, const std::optional<std::string>& current_release) {
    const ReplicaSpec& spec = (*sources.replicas)[static_cast<size_t>(index)];
    ReplicaStatus r;
    r.name = spec.name;
    // Realpath mode: every replica serves whatever release a request is
    // pinned to, which for new requests is the current one.
    r.release = current_release;
    int shown = -1, shown_rank = 99;
    for (const ReplicaMember& m : *sources.members) {
        if (m.replica != index || m.slot < 0) continue;
        const ReplicaSlot& slot = shared.slot(m.slot);
        const TrustedSlot& trusted = shared.trusted(m.slot);
        ReplicaState st = status_state(candidate_of(shared, m.slot, false), now_us);
        // Children write these: bounded before adding (no overflow in a
        // document about memory someone may have forged).
        r.in_flight += std::clamp<int64_t>(slot.in_flight.load(), 0, int64_t{1} << 40);
        r.requests += slot.requests.load();
        r.failures += slot.failures.load();
        r.restarts += trusted.restarts.load();
        if (display_rank(st) >= shown_rank) continue;
        shown_rank = display_rank(st);
        shown = m.slot;
        r.state = st;
        r.admin_drained = slot.admin_drained.load() != 0;
        r.health = static_cast<HealthState>(trusted.health.load());
        ReasonInputs why;
        why.lifecycle = static_cast<ReplicaState>(trusted.lifecycle.load());
        why.health = r.health;
        why.admin_drained = r.admin_drained;
        why.retry_at_us = slot.retry_at_us.load();
        why.trouble = static_cast<MasterTrouble>(trusted.trouble.load());
        why.trouble_detail = trusted.trouble_detail.load();
        if (st != ReplicaState::Ready) {
            std::string reason = state_reason(why);
            r.reason = reason.empty() ? state_name(st) : reason;
        } else {
            r.reason.reset();
        }
        if (sources.routes_by_release) {
            // Namespace mode: the release this member's master serves (null
            // also while it cannot be read consistently).
            std::optional<std::string> served = read_slot_release(trusted);
            r.release = served && !served->empty() ? served : std::nullopt;
        }
        r.socket = m.socket.text();
        int64_t check = trusted.check_latency_us.load();
        r.check_seconds = check >= 0 ? std::optional<double>(check / 1e6) : std::nullopt;
        int64_t warmup_us = trusted.warmup_us.load();
        if (warmup_us >= 0) {
            r.warmup = ReplicaStatus::Warmup{std::max<int64_t>(trusted.warmup_scripts.load(), 0),
                                             warmup_us / 1e6};
        } else {
            r.warmup.reset();
        }
        int32_t pid = trusted.pid.load();
        if (pid == 0 && sources.listener_pid) pid = sources.listener_pid(m.socket);
        r.pid = pid > 0 ? std::optional<int32_t>(pid) : std::nullopt;
    }
    if (shown < 0) r.socket = spec.socket.text();
    if (sources.pool_status && shown >= 0) {
        for (const ReplicaMember& m : *sources.members) {
            if (m.slot != shown || !m.status) continue;
            std::optional<PoolStatus> pool = sources.pool_status(m.slot, *m.status);
            r.pool = ReplicaStatus::Pool{pool.has_value(), pool.value_or(PoolStatus{})};
        }
    }
    return r;
}

ReleaseUse& release_use(VhostStatus& status, const std::string& release) {
    for (ReleaseUse& use : status.releases) {
        if (use.release == release) return use;
    }
    ReleaseUse& use = status.releases.emplace_back();
    use.release = release;
    return use;
}

// Which releases are in use and how: the symlink's figures (in flight,
// answers), and in namespace mode every running master's release.
void read_release_uses(const StatusSources& sources, const SharedState& shared, VhostStatus& status) {
    if (status.release) release_use(status, *status.release);
    int slot = sources.release_link ? shared.find_release(*sources.release_link) : -1;
    for (const ReleaseFiguresView& figures : read_release_figures(shared, slot)) {
        ReleaseUse& use = release_use(status, figures.release);
        use.in_flight = figures.in_flight;
        use.requests = figures.requests;
        use.server_errors = figures.server_errors;
    }
    if (!sources.routes_by_release || !sources.members) return;
    for (const ReplicaMember& m : *sources.members) {
        if (m.slot < 0) continue;
        auto lifecycle = static_cast<ReplicaState>(shared.trusted(m.slot).lifecycle.load());
        if (lifecycle != ReplicaState::Starting && lifecycle != ReplicaState::Ready &&
            lifecycle != ReplicaState::Draining) {
            continue;
        }
        std::optional<std::string> served = read_slot_release(shared.trusted(m.slot));
        if (!served || served->empty()) continue;
        std::vector<std::string>& names = release_use(status, *served).replicas;
        const std::string& name = (*sources.replicas)[static_cast<size_t>(m.replica)].name;
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
}

// Each replica's durations per release, summed over its members; a release
// the vhost no longer knows by path (its figures were reused) is left out.
void read_durations(const StatusSources& sources, const SharedState& shared, VhostStatus& status) {
    for (const ReplicaMember& m : *sources.members) {
        if (m.slot < 0) continue;
        ReplicaStatus& replica = status.replicas[static_cast<size_t>(m.replica)];
        for (const DurationsView& view : read_member_durations(shared, m.slot)) {
            std::optional<std::string> release;
            if (view.release_hash == 0) release = "";
            for (const ReleaseUse& use : status.releases) {
                if (release_hash(use.release) == view.release_hash) release = use.release;
            }
            if (!release) continue;
            auto same = std::find_if(replica.durations.begin(), replica.durations.end(),
                                     [&](const ReplicaStatus::Durations& d) { return d.release == *release; });
            if (same == replica.durations.end()) {
                replica.durations.push_back({*release, view});
                continue;
            }
            for (size_t b = 0; b < kDurationBuckets; ++b) same->figures.buckets[b] += view.buckets[b];
            same->figures.sum_us += view.sum_us;
        }
    }
}

}  // namespace

VhostStatus read_vhost_status(const StatusSources& sources, const SharedState& shared,
                              int64_t now_us) {
    VhostStatus status;
    status.vhost = sources.vhost;
    status.nonce = shared.nonce();
    status.shared_memory = shared.usage();
    status.release = sources.release;
    status.namespace_mode = sources.namespace_mode;
    if (sources.release_link) {
        status.release_link = sources.release_link;
        read_preparation(shared, *sources.release_link, &status);
    }
    if (!sources.replicas || !sources.members) return status;
    for (size_t i = 0; i < sources.replicas->size(); ++i) {
        status.replicas.push_back(
            read_replica(sources, shared, now_us, static_cast<int>(i), status.release));
    }
    read_release_uses(sources, shared, status);
    read_durations(sources, shared, status);
    return status;
}

}  // namespace fpmr
