#include "supervisor_plan.h"

#include "shared_state.h"

#include <charconv>
#include <cstring>
#include <map>

namespace fpmr {

namespace {

// Every field is a token "<length>:<bytes>", so any byte may appear in one.
class Writer {
public:
    void put(std::string_view s) {
        out_ += std::to_string(s.size());
        out_ += ':';
        out_.append(s.data(), s.size());
    }
    void put(int64_t v) { put(std::string_view(std::to_string(v))); }
    void put(bool v) { put(std::string_view(v ? "1" : "0")); }
    void put(const std::optional<SocketSpec>& s) { put(std::string_view(s ? s->text() : "")); }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}

    bool get(std::string* out) {
        size_t colon = in_.find(':');
        if (colon == std::string_view::npos || colon == 0 || colon > 9) return false;
        size_t size = 0;
        auto [end, ec] = std::from_chars(in_.data(), in_.data() + colon, size);
        if (ec != std::errc() || end != in_.data() + colon || in_.size() - colon - 1 < size) {
            return false;
        }
        out->assign(in_.substr(colon + 1, size));
        in_.remove_prefix(colon + 1 + size);
        return true;
    }
    bool get(int64_t* out) {
        std::string s;
        if (!get(&s) || s.empty()) return false;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
        return ec == std::errc() && end == s.data() + s.size();
    }
    bool get(int* out) {
        int64_t v;
        if (!get(&v) || v < INT32_MIN || v > INT32_MAX) return false;
        *out = static_cast<int>(v);
        return true;
    }
    bool get(bool* out) {
        std::string s;
        if (!get(&s) || (s != "0" && s != "1")) return false;
        *out = s == "1";
        return true;
    }
    bool get(SocketSpec* out) {
        std::string s, error;
        if (!get(&s)) return false;
        auto parsed = parse_socket(s, &error);
        if (!parsed) return false;
        *out = *parsed;
        return true;
    }
    bool get(std::optional<SocketSpec>* out) {
        std::string s, error;
        if (!get(&s)) return false;
        if (s.empty()) {
            out->reset();
            return true;
        }
        *out = parse_socket(s, &error);
        return out->has_value();
    }
    // A count of what follows, bounded so garbage cannot ask for gigabytes.
    bool get_count(size_t* out, size_t limit) {
        int64_t v;
        if (!get(&v) || v < 0 || static_cast<uint64_t>(v) > limit) return false;
        *out = static_cast<size_t>(v);
        return true;
    }
    bool done() const { return in_.empty(); }

private:
    std::string_view in_;
};

constexpr std::string_view kMagic = "fpm-replica-plan/2";
// Every replica has a shared slot of its own, so no plan names more.
constexpr size_t kMaxReplicas = kMaxSlotCapacity;
constexpr size_t kMaxWords = 4096;

void put_replica(Writer& w, const ReplicaPlan& r) {
    w.put(std::string_view(r.vhost));
    w.put(r.supervised);
    w.put(r.health.has_value());
    if (r.health) {
        w.put(r.health->interval_us);
        w.put(r.health->timeout_us);
        w.put(static_cast<int64_t>(r.health->fails));
        w.put(static_cast<int64_t>(r.health->passes));
        w.put(std::string_view(r.health->path));
    }
    w.put(static_cast<int64_t>(r.request.command.size()));
    for (const std::string& word : r.request.command) w.put(std::string_view(word));
    w.put(std::string_view(r.request.replica.name));
    w.put(std::string_view(r.request.replica.socket.text()));
    w.put(r.request.replica.status);
    w.put(r.request.replica.probe);
    w.put(std::string_view(r.request.stable_path));
    w.put(std::string_view(r.request.helper_path));
    w.put(std::string_view(r.request.helper_config));
    w.put(std::string_view(r.release_symlink));
    w.put(r.drain_timeout_us);
    w.put(r.warmup.enabled);
    w.put(r.warmup.timeout_us);
    w.put(std::string_view(r.warmup.script));
    w.put(static_cast<int64_t>(r.warmup.urls.size()));
    for (const std::string& url : r.warmup.urls) w.put(std::string_view(url));
    w.put(r.warmup_listener);
    w.put(std::string_view(r.warmup_host));
    w.put(static_cast<int64_t>(r.members.size()));
    for (const MemberPlan& m : r.members) {
        w.put(static_cast<int64_t>(m.slot));
        w.put(std::string_view(m.socket.text()));
        w.put(m.status);
    }
}

bool get_replica(Reader& r, ReplicaPlan* out, uint32_t slot_count) {
    bool has_health;
    if (!r.get(&out->vhost) || !r.get(&out->supervised) || !r.get(&has_health)) return false;
    if (has_health) {
        HealthCheckSpec h;
        if (!r.get(&h.interval_us) || !r.get(&h.timeout_us) || !r.get(&h.fails) ||
            !r.get(&h.passes) || !r.get(&h.path)) {
            return false;
        }
        out->health = h;
    }
    size_t words;
    if (!r.get_count(&words, kMaxWords)) return false;
    out->request.command.resize(words);
    for (std::string& word : out->request.command) {
        if (!r.get(&word)) return false;
    }
    ReplicaSpec& spec = out->request.replica;
    if (!r.get(&spec.name) || !r.get(&spec.socket) || !r.get(&spec.status) ||
        !r.get(&spec.probe) || !r.get(&out->request.stable_path) ||
        !r.get(&out->request.helper_path) || !r.get(&out->request.helper_config) ||
        !r.get(&out->release_symlink) || !r.get(&out->drain_timeout_us) ||
        out->drain_timeout_us < 0) {
        return false;
    }
    size_t urls;
    if (!r.get(&out->warmup.enabled) || !r.get(&out->warmup.timeout_us) ||
        out->warmup.timeout_us < 0 || !r.get(&out->warmup.script) ||
        !r.get_count(&urls, kMaxWarmupUrls)) {
        return false;
    }
    out->warmup.urls.resize(urls);
    for (std::string& url : out->warmup.urls) {
        if (!r.get(&url)) return false;
    }
    if (!r.get(&out->warmup_listener) || !r.get(&out->warmup_host)) return false;
    // Every replica has its primary member; the supervisor indexes shared
    // slots with these numbers, so they must name one of its blocks'.
    size_t members;
    if (!r.get_count(&members, 2) || members < 1) return false;
    out->members.resize(members);
    for (MemberPlan& m : out->members) {
        if (!r.get(&m.slot) || !r.get(&m.socket) || !r.get(&m.status)) return false;
        if (m.slot < 0 || static_cast<uint32_t>(m.slot) >= slot_count) return false;
    }
    return true;
}

}  // namespace

std::string encode_plan(const SupervisorPlan& plan) {
    Writer w;
    w.put(kMagic);
    w.put(static_cast<int64_t>(plan.generation));
    w.put(plan.drain_timeout_us);
    w.put(static_cast<int64_t>(plan.replicas.size()));
    for (const ReplicaPlan& r : plan.replicas) put_replica(w, r);
    return w.take();
}

std::optional<SupervisorPlan> decode_plan(std::string_view bytes, uint32_t slot_count) {
    Reader r(bytes);
    std::string magic;
    int64_t generation;
    SupervisorPlan plan;
    size_t count;
    if (!r.get(&magic) || magic != kMagic || !r.get(&generation) || generation < 0 ||
        generation > UINT32_MAX || !r.get(&plan.drain_timeout_us) ||
        !r.get_count(&count, kMaxReplicas)) {
        return std::nullopt;
    }
    plan.generation = static_cast<uint32_t>(generation);
    plan.replicas.resize(count);
    for (ReplicaPlan& replica : plan.replicas) {
        if (!get_replica(r, &replica, slot_count)) return std::nullopt;
    }
    if (!r.done()) return std::nullopt;
    return plan;
}

std::string frame_plan(const SupervisorPlan& plan) {
    std::string payload = encode_plan(plan);
    uint32_t size = static_cast<uint32_t>(payload.size());
    std::string frame(sizeof size, '\0');
    std::memcpy(frame.data(), &size, sizeof size);
    return frame + payload;
}

bool PlanFrames::next(std::optional<SupervisorPlan>* plan) {
    uint32_t size;
    if (buffer_.size() < sizeof size) return false;
    std::memcpy(&size, buffer_.data(), sizeof size);
    if (size > kMaxFrameBytes) {
        // No plan is this large: the stream is garbled. Drop what is buffered
        // rather than wait for (and hold) gigabytes.
        buffer_.clear();
        broken_ = true;
        *plan = std::nullopt;
        return true;
    }
    if (buffer_.size() - sizeof size < size) return false;
    *plan = decode_plan(std::string_view(buffer_).substr(sizeof size, size), slot_count_);
    buffer_.erase(0, sizeof size + size);
    return true;
}

PlanChanges compare_plans(const std::vector<ReplicaPlan>& running,
                          const std::vector<ReplicaPlan>& wanted) {
    PlanChanges changes;
    std::map<std::pair<std::string, std::string>, size_t> wanted_by_id;
    for (size_t i = 0; i < wanted.size(); ++i) {
        wanted_by_id.emplace(std::make_pair(wanted[i].vhost, wanted[i].name()), i);
    }
    std::vector<bool> matched(wanted.size(), false);
    for (size_t i = 0; i < running.size(); ++i) {
        auto it = wanted_by_id.find({running[i].vhost, running[i].name()});
        if (it == wanted_by_id.end()) {
            changes.removed.push_back(i);
            continue;
        }
        const ReplicaPlan& w = wanted[it->second];
        matched[it->second] = true;
        if (running[i].supervised != w.supervised) {
            changes.switched.emplace_back(i, it->second);
            continue;
        }
        bool same_place = running[i].members.size() == w.members.size();
        for (size_t m = 0; same_place && m < w.members.size(); ++m) {
            same_place = running[i].members[m].slot == w.members[m].slot &&
                         running[i].members[m].socket == w.members[m].socket;
        }
        if (same_place) {
            changes.kept.emplace_back(i, it->second);
        } else {
            changes.removed.push_back(i);
            matched[it->second] = false;  // added below
        }
    }
    for (size_t i = 0; i < wanted.size(); ++i) {
        if (!matched[i]) changes.added.push_back(i);
    }
    return changes;
}

}  // namespace fpmr
