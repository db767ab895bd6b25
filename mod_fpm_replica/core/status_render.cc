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

std::string render_status_json(const VhostStatus& status) {
    std::string out = "{\"vhost\": " + json_escape(status.vhost) +
                      ", \"release\": " + optional_string(status.release) +
                      ", \"nonce\": " + json_escape(status.nonce) + ",\n \"replicas\": [";
    for (size_t i = 0; i < status.replicas.size(); ++i) {
        const ReplicaStatus& r = status.replicas[i];
        out += i ? ",\n  " : "\n  ";
        out += "{\"name\": " + json_escape(r.name) + ", \"socket\": " + json_escape(r.socket) +
               ", \"state\": \"" + state_name(r.state) + "\"" +
               ", \"release\": " + optional_string(r.release) +
               ", \"pid\": " + (r.pid ? std::to_string(*r.pid) : "null") +
               ", \"in_flight\": " + std::to_string(r.in_flight) +
               ", \"requests\": " + std::to_string(r.requests) +
               ", \"failures\": " + std::to_string(r.failures) +
               ", \"restarts\": " + std::to_string(r.restarts) + "}";
    }
    out += status.replicas.empty() ? "]}\n" : "\n ]}\n";
    return out;
}

}  // namespace fpmr
