// JSON rendering of the status document.
#include "status_render.h"

#include <cstdio>

namespace fpmr {

std::string json_escape(const std::string& text) {
    std::string out;
    out.reserve(text.size() + 2);
    out += '"';
    for (unsigned char c : text) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += '"';
    return out;
}

namespace {
std::string optional_string(const std::optional<std::string>& value) {
    return value ? json_escape(*value) : "null";
}
}  // namespace

namespace {

std::string warmup_json(const std::optional<ReplicaStatus::Warmup>& warmup) {
    if (!warmup) return "null";
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.3f", warmup->seconds);
    return "{\"scripts\": " + std::to_string(warmup->scripts) + ", \"seconds\": " + seconds + "}";
}

}  // namespace

std::string render_status_json(const VhostStatus& status) {
    std::string out = "{\"vhost\": " + json_escape(status.vhost) +
                      ", \"mode\": \"" + (status.namespace_mode ? "namespace" : "realpath") + "\"" +
                      ", \"release\": " + optional_string(status.release) +
                      ", \"release_link\": " + optional_string(status.release_link) +
                      ", \"previous_release\": " + optional_string(status.previous_release) +
                      ", \"prepared\": " +
                      (status.prepared_release
                           ? "{\"release\": " + json_escape(*status.prepared_release) +
                                 ", \"state\": " + json_escape(status.prepared_state) + "}"
                           : std::string("null")) +
                      ", \"nonce\": " + json_escape(status.nonce) + ",\n \"replicas\": [";
    for (size_t i = 0; i < status.replicas.size(); ++i) {
        const ReplicaStatus& r = status.replicas[i];
        out += i ? ",\n  " : "\n  ";
        out += "{\"name\": " + json_escape(r.name) + ", \"socket\": " + json_escape(r.socket) +
               ", \"state\": \"" + state_name(r.state) + "\"" +
               ", \"admin\": \"" + (r.admin_drained ? "drained" : "active") + "\"" +
               ", \"health\": \"" + health_name(r.health) + "\"" +
               ", \"reason\": " + optional_string(r.reason) +
               ", \"release\": " + optional_string(r.release) +
               ", \"pid\": " + (r.pid ? std::to_string(*r.pid) : "null") +
               ", \"in_flight\": " + std::to_string(r.in_flight) +
               ", \"requests\": " + std::to_string(r.requests) +
               ", \"failures\": " + std::to_string(r.failures) +
               ", \"restarts\": " + std::to_string(r.restarts) +
               ", \"warmup\": " + warmup_json(r.warmup) + "}";
    }
    out += status.replicas.empty() ? "],\n \"releases\": [" : "\n ],\n \"releases\": [";
    for (size_t i = 0; i < status.releases.size(); ++i) {
        const ReleaseUse& use = status.releases[i];
        std::string replicas;
        for (const std::string& name : use.replicas) replicas += (replicas.empty() ? "" : ", ") + json_escape(name);
        out += i ? ",\n  " : "\n  ";
        out += "{\"release\": " + json_escape(use.release) +
               ", \"in_flight\": " + std::to_string(use.in_flight) +
               ", \"requests\": " + std::to_string(use.requests) +
               ", \"server_errors\": " + std::to_string(use.server_errors) +
               ", \"replicas\": [" + replicas + "]}";
    }
    out += status.releases.empty() ? "]," : "\n ],";
    const SharedState::Usage& u = status.shared_memory;
    out += "\n \"shared_memory\": {\"members\": " + std::to_string(u.members_used) +
           ", \"member_capacity\": " + std::to_string(u.members) +
           ", \"release_symlinks\": " + std::to_string(u.releases_used) +
           ", \"release_symlink_capacity\": " + std::to_string(u.releases) +
           ", \"child_rows\": " + std::to_string(u.child_rows_used) +
           ", \"child_row_capacity\": " + std::to_string(u.child_rows) + "}}\n";
    return out;
}

}  // namespace fpmr

namespace fpmr {

namespace {

std::string label_escape(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

void family(std::string& out, const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

std::string number(double value, const char* format) {
    char text[48];
    std::snprintf(text, sizeof text, format, value);
    return text;
}

// One histogram's series: cumulative buckets, +Inf, sum and count.
// `labels` opens the label set without closing it ("{vhost=...,replica=...").
void render_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const DurationsView& figures) {
    uint64_t cumulative = 0;
    for (size_t b = 0; b < kDurationBuckets; ++b) {
        cumulative += figures.buckets[b];
        std::string le = b < kDurationBounds ? number(kDurationBoundsSeconds[b], "%g") : "+Inf";
        out += name + "_bucket" + labels + ",le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
    }
    out += name + "_sum" + labels + "} " + number(static_cast<double>(figures.sum_us) / 1e6, "%.6f") + "\n";
    out += name + "_count" + labels + "} " + std::to_string(cumulative) + "\n";
}

// php-fpm's pool figures per replica, named and meant as php-fpm_exporter's.
template <class Labels>
void render_pool_figures(std::string& out, const VhostStatus& status, const Labels& labels) {
    family(out, "fpm_replica_pool_up", "gauge",
           "1 when the replica's php-fpm status page answered the last scrape in time, else 0.");
    for (const auto& r : status.replicas) {
        if (r.pool) out += "fpm_replica_pool_up" + labels(r) + "} " + (r.pool->up ? "1" : "0") + "\n";
    }
    struct Figure {
        PoolFigure figure;
        const char* name;
        const char* type;
        const char* help;
    };
    const Figure figures[] = {
        {PoolFigure::AcceptedConnections, "fpm_replica_pool_accepted_connections_total", "counter",
         "Connections the replica's php-fpm pool accepted (accepted conn)."},
        {PoolFigure::ListenQueue, "fpm_replica_pool_listen_queue", "gauge",
         "Connections waiting for a free worker (listen queue)."},
        {PoolFigure::MaxListenQueue, "fpm_replica_pool_max_listen_queue", "gauge",
         "Most connections ever waiting since the master started (max listen queue)."},
        {PoolFigure::ListenQueueLength, "fpm_replica_pool_listen_queue_length", "gauge",
         "Size of the socket's queue of waiting connections (listen queue len)."},
        {PoolFigure::IdleProcesses, "fpm_replica_pool_idle_processes", "gauge", "Idle workers (idle processes)."},
        {PoolFigure::ActiveProcesses, "fpm_replica_pool_active_processes", "gauge",
         "Workers serving a request (active processes)."},
        {PoolFigure::TotalProcesses, "fpm_replica_pool_total_processes", "gauge", "Workers (total processes)."},
        {PoolFigure::MaxActiveProcesses, "fpm_replica_pool_max_active_processes", "gauge",
         "Most workers ever active since the master started (max active processes)."},
        {PoolFigure::MaxChildrenReached, "fpm_replica_pool_max_children_reached_total", "counter",
         "Times the pool wanted another worker past pm.max_children (max children reached)."},
        {PoolFigure::SlowRequests, "fpm_replica_pool_slow_requests_total", "counter",
         "Requests that ran past request_slowlog_timeout (slow requests)."},
    };
    for (const auto& f : figures) {
        family(out, f.name, f.type, f.help);
        for (const auto& r : status.replicas) {
            if (!r.pool || !r.pool->up) continue;
            out += std::string(f.name) + labels(r) + "} " + std::to_string(r.pool->figures[f.figure]) + "\n";
        }
    }
}

// A counter or gauge with one series per item (a replica, a release).
template <class Item>
struct Figure {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const Item&);
};

// Each figure's family and its series; `labels(item)` opens the label set
// without closing it.
template <class Item, size_t N, class Labels>
void render_figures(std::string& out, const Figure<Item> (&figures)[N], const std::vector<Item>& items,
                    const Labels& labels) {
    for (const auto& f : figures) {
        family(out, f.name, f.type, f.help);
        for (const Item& item : items) {
            out += std::string(f.name) + labels(item) + "} " + number(f.value(item), "%.0f") + "\n";
        }
    }
}

void render_release_figures(std::string& out, const VhostStatus& status, const std::string& vhost) {
    const Figure<ReleaseUse> figures[] = {
        {"fpm_replica_release_in_flight", "gauge", "Requests pinned to the release and not finished.",
         [](const ReleaseUse& u) { return static_cast<double>(u.in_flight); }},
        {"fpm_replica_release_requests_total", "counter", "PHP requests answered from the release.",
         [](const ReleaseUse& u) { return static_cast<double>(u.requests); }},
        {"fpm_replica_release_server_errors_total", "counter",
         "PHP requests of the release answered with a 5xx status (php-fpm's or a gateway error).",
         [](const ReleaseUse& u) { return static_cast<double>(u.server_errors); }},
    };
    render_figures(out, figures, status.releases, [&](const ReleaseUse& use) {
        return "{" + vhost + ",release=\"" + label_escape(use.release) + "\"";
    });
}

}  // namespace

std::string render_status_prometheus(const VhostStatus& status) {
    std::string out;
    const std::string vhost = "vhost=\"" + label_escape(status.vhost) + "\"";
    auto labels = [&](const ReplicaStatus& r) {
        return "{" + vhost + ",replica=\"" + label_escape(r.name) + "\"";
    };
    family(out, "fpm_replica_vhost_release_info", "gauge",
           "The release the vhost's release symlink names now (1; absent without one).");
    if (status.release) {
        out += "fpm_replica_vhost_release_info{" + vhost + ",release=\"" +
               label_escape(*status.release) + "\"} 1\n";
    }
    family(out, "fpm_replica_info", "gauge", "A replica's socket and the release it serves (1).");
    for (const auto& r : status.replicas) {
        out += "fpm_replica_info" + labels(r) + ",socket=\"" + label_escape(r.socket) +
               "\",release=\"" + label_escape(r.release.value_or("")) + "\"} 1\n";
    }
    family(out, "fpm_replica_state", "gauge",
           "1 for the replica's current state (starting, ready, draining, stopped, failed), else 0.");
    for (const auto& r : status.replicas) {
        for (auto st : {ReplicaState::Starting, ReplicaState::Ready, ReplicaState::Draining,
                        ReplicaState::Stopped, ReplicaState::Failed}) {
            out += "fpm_replica_state" + labels(r) + ",state=\"" + state_name(st) + "\"} " +
                   (st == r.state ? "1" : "0") + "\n";
        }
    }
    const Figure<ReplicaStatus> figures[] = {
        {"fpm_replica_in_flight", "gauge", "Requests handed to the replica and not finished.",
         [](const ReplicaStatus& r) { return static_cast<double>(r.in_flight); }},
        {"fpm_replica_requests_total", "counter", "Requests handed to the replica.",
         [](const ReplicaStatus& r) { return static_cast<double>(r.requests); }},
        {"fpm_replica_failures_total", "counter",
         "Requests that ended in a backend error on the replica (refused, reset).",
         [](const ReplicaStatus& r) { return static_cast<double>(r.failures); }},
        {"fpm_replica_restarts_total", "counter", "Times the supervisor restarted or replaced the replica.",
         [](const ReplicaStatus& r) { return static_cast<double>(r.restarts); }},
    };
    family(out, "fpm_replica_health_check_seconds", "gauge",
           "Duration of the replica's last health check (FpmReplicaHealthCheck).");
    for (const auto& r : status.replicas) {
        if (!r.check_seconds) continue;
        char value[32];
        std::snprintf(value, sizeof value, "%.6f", *r.check_seconds);
        out += "fpm_replica_health_check_seconds" + labels(r) + "} " + value + "\n";
    }
    family(out, "fpm_replica_warmup_scripts", "gauge",
           "Scripts the replica's master compiled in its last warm-up (FpmReplicaWarmup).");
    for (const auto& r : status.replicas) {
        if (r.warmup) out += "fpm_replica_warmup_scripts" + labels(r) + "} " + std::to_string(r.warmup->scripts) + "\n";
    }
    family(out, "fpm_replica_warmup_seconds", "gauge", "Duration of the replica's master's last warm-up.");
    for (const auto& r : status.replicas) {
        if (!r.warmup) continue;
        char value[32];
        std::snprintf(value, sizeof value, "%.6f", r.warmup->seconds);
        out += "fpm_replica_warmup_seconds" + labels(r) + "} " + value + "\n";
    }
    render_figures(out, figures, status.replicas, labels);
    render_pool_figures(out, status, labels);
    render_release_figures(out, status, vhost);
    const SharedState::Usage& u = status.shared_memory;
    const std::pair<const char*, std::pair<uint32_t, uint32_t>> kinds[] = {
        {"members", {u.members_used, u.members}},
        {"release_symlinks", {u.releases_used, u.releases}},
        {"child_rows", {u.child_rows_used, u.child_rows}},
    };
    family(out, "fpm_replica_shared_memory_used", "gauge",
           "Records of the httpd instance's shared memory in use, by kind (members, release_symlinks, child_rows).");
    for (const auto& [kind, figures] : kinds) {
        out += std::string("fpm_replica_shared_memory_used{kind=\"") + kind + "\"} " +
               std::to_string(figures.first) + "\n";
    }
    family(out, "fpm_replica_shared_memory_capacity", "gauge",
           "Records the shared memory was made with at httpd's start, by kind.");
    for (const auto& [kind, figures] : kinds) {
        out += std::string("fpm_replica_shared_memory_capacity{kind=\"") + kind + "\"} " +
               std::to_string(figures.second) + "\n";
    }
    family(out, "fpm_replica_request_duration_seconds", "histogram",
           "Duration of PHP requests answered by the replica, per release they were pinned to.");
    for (const auto& r : status.replicas) {
        for (const auto& d : r.durations) {
            render_histogram(out, "fpm_replica_request_duration_seconds",
                             labels(r) + ",release=\"" + label_escape(d.release) + "\"", d.figures);
        }
    }
    return out;
}

}  // namespace fpmr
