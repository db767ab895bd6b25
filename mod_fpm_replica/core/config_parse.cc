// Directive argument parsing: sockets, names, durations.
#include "config_parse.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>

namespace fpmr {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

bool parse_port(std::string_view text, int* port) {
    if (text.empty() || text.size() > 5) return false;
    int value = 0;
    for (char c : text) {
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
        value = value * 10 + (c - '0');
    }
    if (value < 1 || value > 65535) return false;
    *port = value;
    return true;
}

bool is_valid_host(std::string_view host) {
    if (host.empty() || host.size() > 253) return false;
    for (char c : host) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
              c == '_' || c == ':')) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::string SocketSpec::text() const {
    if (kind == Kind::Unix) return "unix:" + path;
    return "tcp:" + fpm_listen();
}

std::string SocketSpec::fpm_listen() const {
    if (kind == Kind::Unix) return path;
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

std::string SocketSpec::proxy_url(const std::string& worker_host) const {
    // No trailing slash: mod_proxy_balancer appends the request's path to the
    // worker name, and php-fpm would otherwise get SCRIPT_FILENAME "//srv/...".
    if (kind == Kind::Unix) return "unix:" + path + "|fcgi://" + worker_host;
    return "fcgi://" + fpm_listen();
}

SocketSpec SocketSpec::alternate() const {
    SocketSpec alt = *this;
    if (kind == Kind::Unix) alt.path += ".alt";
    return alt;
}

std::optional<SocketSpec> parse_socket(std::string_view text, std::string* error) {
    SocketSpec spec;
    if (starts_with(text, "unix:")) {
        spec.kind = SocketSpec::Kind::Unix;
        spec.path = std::string(text.substr(5));
        if (spec.path.empty() || spec.path[0] != '/') {
            *error = "socket " + quoted(text) + " must name an absolute path (unix:/run/x.sock)";
            return std::nullopt;
        }
        if (spec.path.size() > kMaxUnixPathLength) {
            *error = "socket path " + quoted(spec.path) + " is longer than " +
                     std::to_string(kMaxUnixPathLength) + " characters";
            return std::nullopt;
        }
        for (char c : spec.path) {
            if (std::isspace(static_cast<unsigned char>(c)) || c == '|' || c == '?' || c == '#') {
                *error = "socket path " + quoted(spec.path) +
                         " contains a space, '|', '?' or '#', which mod_proxy cannot carry";
                return std::nullopt;
            }
        }
        return spec;
    }
    if (starts_with(text, "tcp:")) {
        spec.kind = SocketSpec::Kind::Tcp;
        std::string_view rest = text.substr(4);
        std::string_view host, port;
        if (starts_with(rest, "[")) {
            size_t close = rest.find(']');
            if (close == std::string_view::npos || close + 1 >= rest.size() ||
                rest[close + 1] != ':') {
                *error = "socket " + quoted(text) + " is not tcp:[IPV6]:PORT";
                return std::nullopt;
            }
            host = rest.substr(1, close - 1);
            port = rest.substr(close + 2);
        } else {
            size_t colon = rest.rfind(':');
            if (colon == std::string_view::npos) {
                *error = "socket " + quoted(text) + " has no port (tcp:HOST:PORT)";
                return std::nullopt;
            }
            host = rest.substr(0, colon);
            port = rest.substr(colon + 1);
            if (host.find(':') != std::string_view::npos) {
                *error = "socket " + quoted(text) + " has an IPv6 address without brackets (tcp:[::1]:9000)";
                return std::nullopt;
            }
        }
        if (!is_valid_host(host)) {
            *error = "socket " + quoted(text) + " has an invalid host";
            return std::nullopt;
        }
        if (!parse_port(port, &spec.port)) {
            *error = "socket " + quoted(text) + " has an invalid port (1-65535)";
            return std::nullopt;
        }
        spec.host = std::string(host);
        return spec;
    }
    *error = "socket " + quoted(text) + " has an unknown scheme (use unix:/path or tcp:HOST:PORT)";
    return std::nullopt;
}

bool is_valid_replica_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxReplicaNameLength) return false;
    for (char c : name) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
    }
    return true;
}

std::optional<ReplicaSpec> parse_replica(const std::vector<std::string>& args,
                                         std::string* error) {
    if (args.empty()) {
        *error = "needs a NAME and a SOCKET (FpmReplica NAME unix:/path [status=SOCKET] [probe=SOCKET])";
        return std::nullopt;
    }
    ReplicaSpec spec;
    spec.name = args[0];
    if (!is_valid_replica_name(spec.name)) {
        *error = "name " + quoted(spec.name) + " must be 1-" +
                 std::to_string(kMaxReplicaNameLength) + " letters, digits, '-' or '_'";
        return std::nullopt;
    }
    if (args.size() < 2 || args[1].find('=') != std::string::npos) {
        *error = "replica " + quoted(spec.name) + " has no SOCKET (unix:/path or tcp:HOST:PORT)";
        return std::nullopt;
    }
    auto socket = parse_socket(args[1], error);
    if (!socket) return std::nullopt;
    spec.socket = *socket;

    for (size_t i = 2; i < args.size(); ++i) {
        const std::string& word = args[i];
        size_t eq = word.find('=');
        if (eq == std::string::npos) {
            *error = "replica " + quoted(spec.name) + ": unexpected argument " + quoted(word) +
                     " (options are status=SOCKET and probe=SOCKET)";
            return std::nullopt;
        }
        std::string key = word.substr(0, eq);
        std::string value = word.substr(eq + 1);
        std::optional<SocketSpec>* slot = nullptr;
        if (key == "status") {
            slot = &spec.status;
        } else if (key == "probe") {
            slot = &spec.probe;
        } else {
            *error = "replica " + quoted(spec.name) + ": unknown option " + quoted(word) +
                     " (options are status=SOCKET and probe=SOCKET)";
            return std::nullopt;
        }
        if (slot->has_value()) {
            *error = "replica " + quoted(spec.name) + ": option " + quoted(key) + " given twice";
            return std::nullopt;
        }
        std::string socket_error;
        auto option_socket = parse_socket(value, &socket_error);
        if (!option_socket) {
            *error = "replica " + quoted(spec.name) + ": " + key + "=: " + socket_error;
            return std::nullopt;
        }
        *slot = *option_socket;
    }
    return spec;
}

std::string check_replica_conflicts(const std::vector<ReplicaSpec>& existing,
                                    const ReplicaSpec& candidate) {
    if (existing.size() >= kMaxReplicasPerVhost) {
        return "replica " + quoted(candidate.name) + " exceeds the limit of " +
               std::to_string(kMaxReplicasPerVhost) + " replicas per virtual host";
    }
    auto sockets_of = [](const ReplicaSpec& r) {
        std::vector<SocketSpec> all{r.socket};
        if (r.status) all.push_back(*r.status);
        if (r.probe) all.push_back(*r.probe);
        return all;
    };
    const auto mine = sockets_of(candidate);
    for (size_t i = 0; i < mine.size(); ++i) {
        for (size_t j = i + 1; j < mine.size(); ++j) {
            if (mine[i] == mine[j]) {
                return "replica " + quoted(candidate.name) + " uses socket " +
                       quoted(mine[i].text()) + " twice";
            }
        }
    }
    for (const auto& other : existing) {
        if (other.name == candidate.name) {
            return "replica name " + quoted(candidate.name) + " is declared twice in this virtual host";
        }
        for (const auto& theirs : sockets_of(other)) {
            for (const auto& s : mine) {
                if (s == theirs) {
                    return "replica " + quoted(candidate.name) + " uses socket " +
                           quoted(s.text()) + ", already used by replica " + quoted(other.name);
                }
            }
        }
    }
    return {};
}

std::optional<int64_t> parse_duration_us(std::string_view text, std::string* error) {
    size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
    if (digits == 0 || digits > 9) {
        *error = "duration " + quoted(text) + " is not a number with an optional unit (500ms, 2s, 1m)";
        return std::nullopt;
    }
    int64_t value = std::strtoll(std::string(text.substr(0, digits)).c_str(), nullptr, 10);
    std::string_view unit = text.substr(digits);
    int64_t scale;
    if (unit.empty() || unit == "s") {
        scale = 1000000;
    } else if (unit == "ms") {
        scale = 1000;
    } else if (unit == "m") {
        scale = 60LL * 1000000;
    } else {
        *error = "duration " + quoted(text) + " has an unknown unit (use ms, s or m)";
        return std::nullopt;
    }
    return value * scale;
}

}  // namespace fpmr

namespace fpmr {

std::optional<HealthCheckSpec> parse_health_check(const std::vector<std::string>& args,
                                                  std::string* error) {
    HealthCheckSpec spec;
    bool timeout_given = false;
    for (const auto& word : args) {
        size_t eq = word.find('=');
        std::string key = eq == std::string::npos ? word : word.substr(0, eq);
        std::string value = eq == std::string::npos ? "" : word.substr(eq + 1);
        if (key == "interval" || key == "timeout") {
            auto us = parse_duration_us(value, error);
            if (!us) return std::nullopt;
            if (*us < 10000 || *us > 3600LL * 1000000) {
                *error = key + "=" + value + " must be between 10ms and 1h";
                return std::nullopt;
            }
            (key == "interval" ? spec.interval_us : spec.timeout_us) = *us;
            timeout_given = timeout_given || key == "timeout";
        } else if (key == "fails" || key == "passes") {
            char* end = nullptr;
            long n = std::strtol(value.c_str(), &end, 10);
            if (value.empty() || *end || n < 1 || n > 100) {
                *error = key + "=" + value + " must be a number from 1 to 100";
                return std::nullopt;
            }
            (key == "fails" ? spec.fails : spec.passes) = static_cast<int>(n);
        } else if (key == "path") {
            if (value.empty() || value[0] != '/' || value.find_first_of(" \t\r\n") != std::string::npos) {
                *error = "path=" + value + " must be an absolute URL path such as /ping";
                return std::nullopt;
            }
            spec.path = value;
        } else {
            *error = "unknown option '" + word + "' (interval=, timeout=, fails=, passes=, path=)";
            return std::nullopt;
        }
    }
    // Unset, the timeout follows a shorter interval (as HAProxy's check
    // timeout defaults to its interval); set, it may not exceed it.
    if (!timeout_given && spec.timeout_us > spec.interval_us) spec.timeout_us = spec.interval_us;
    if (spec.timeout_us > spec.interval_us) {
        *error = "timeout must not be longer than interval";
        return std::nullopt;
    }
    return spec;
}

std::optional<WarmupSpec> parse_warmup(const std::vector<std::string>& args,
                                       std::string* error) {
    WarmupSpec spec;
    if (args.size() == 1 && args[0] == "off") {
        spec.enabled = false;
        return spec;
    }
    bool timeout_given = false, script_given = false;
    for (const auto& word : args) {
        if (word == "off") {
            *error = "'off' must be the only argument";
            return std::nullopt;
        }
        if (!word.empty() && word[0] == '/') {
            // A URL path requested through the new master: one word of
            // printable characters, no fragment.
            bool printable = true;
            for (unsigned char c : word) printable = printable && c > 0x20 && c < 0x7f;
            if (!printable || word.find('#') != std::string::npos) {
                *error = "'" + word + "' must be a URL path such as /index.php";
                return std::nullopt;
            }
            if (spec.urls.size() == kMaxWarmupUrls) {
                *error = "more than " + std::to_string(kMaxWarmupUrls) + " URL paths";
                return std::nullopt;
            }
            spec.urls.push_back(word);
            continue;
        }
        size_t eq = word.find('=');
        std::string key = eq == std::string::npos ? word : word.substr(0, eq);
        std::string value = eq == std::string::npos ? "" : word.substr(eq + 1);
        if (key == "timeout" && eq != std::string::npos) {
            if (timeout_given) {
                *error = "timeout= given twice";
                return std::nullopt;
            }
            auto us = parse_duration_us(value, error);
            if (!us) return std::nullopt;
            if (*us < 100000 || *us > 600LL * 1000000) {
                *error = "timeout=" + value + " must be between 100ms and 10m";
                return std::nullopt;
            }
            spec.timeout_us = *us;
            timeout_given = true;
        } else if (key == "script" && eq != std::string::npos) {
            if (script_given) {
                *error = "script= given twice";
                return std::nullopt;
            }
            // php-fpm runs it as SCRIPT_FILENAME: an absolute, plain path
            // of a .php file (security.limit_extensions).
            bool plain = value.size() > 5 && value.size() <= 4096 && value[0] == '/' &&
                         value.compare(value.size() - 4, 4, ".php") == 0 &&
                         value.find("/./") == std::string::npos &&
                         value.find("/../") == std::string::npos &&
                         value.find("//") == std::string::npos;
            for (unsigned char c : value) plain = plain && c > 0x20 && c < 0x7f;
            if (!plain) {
                *error = "script=" + value +
                         " must be the absolute path of a .php file, without '.' or '..' components";
                return std::nullopt;
            }
            spec.script = value;
            script_given = true;
        } else {
            *error = "unknown argument '" + word + "' (timeout=, script=, URL paths starting with '/', or off)";
            return std::nullopt;
        }
    }
    return spec;
}

std::optional<AssetFallbackSpec> parse_asset_fallback(const std::vector<std::string>& args,
                                                      std::string* error) {
    if (args.empty() || args.size() > 2) {
        *error = "takes a regular expression and, optionally, releases=N";
        return std::nullopt;
    }
    AssetFallbackSpec spec;
    spec.pattern = args[0];
    if (spec.pattern.empty()) {
        *error = "the regular expression is empty";
        return std::nullopt;
    }
    if (args.size() == 2) {
        const std::string& word = args[1];
        if (word.rfind("releases=", 0) != 0) {
            *error = "unknown option '" + word + "' (the option is releases=N)";
            return std::nullopt;
        }
        std::string value = word.substr(9);
        char* end = nullptr;
        long n = std::strtol(value.c_str(), &end, 10);
        if (value.empty() || *end != '\0' || n < 1 || n > kMaxAssetFallbackReleases) {
            *error = "releases=" + value + " must be a number from 1 to " +
                     std::to_string(kMaxAssetFallbackReleases);
            return std::nullopt;
        }
        spec.releases = static_cast<int>(n);
    }
    return spec;
}

}  // namespace fpmr
