#include "control_checks.h"

#include <arpa/inet.h>

#include <cstring>

namespace fpmr {

bool constant_time_equal(std::string_view secret, std::string_view supplied) {
    // Walk the whole secret whatever was supplied; a byte past the end of a
    // short guess compares against 0, and the length difference is folded in
    // at the end, so neither length nor content changes the path taken.
    unsigned diff = static_cast<unsigned>(secret.size() ^ supplied.size());
    const size_t n = secret.size();
    volatile unsigned char acc = 0;
    for (size_t i = 0; i < n; ++i) {
        unsigned char theirs = i < supplied.size() ? static_cast<unsigned char>(supplied[i]) : 0;
        acc = static_cast<unsigned char>(acc | (static_cast<unsigned char>(secret[i]) ^ theirs));
    }
    return (diff | acc) == 0;
}

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowered(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = lower(c);
    return out;
}

int default_port(const std::string& scheme) { return scheme == "https" ? 443 : 80; }

// "host[:port]" as it appears in a Host header or after "scheme://";
// nullopt when it is not a plain authority (userinfo, spaces, a bad port).
std::optional<std::string> normalized_authority(const std::string& scheme, std::string_view auth) {
    if (auth.empty()) return std::nullopt;
    for (char c : auth) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f || c == '@' || c == '/' || c == '\\' || c == ',' || c == '?' ||
            c == '#') {
            return std::nullopt;
        }
    }
    std::string host;
    std::string_view port;
    if (auth[0] == '[') {
        size_t close = auth.find(']');
        if (close == std::string_view::npos || close < 2) return std::nullopt;
        host = lowered(auth.substr(0, close + 1));
        std::string_view rest = auth.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':') return std::nullopt;
            port = rest.substr(1);
        }
    } else {
        size_t colon = auth.find(':');
        if (colon != std::string_view::npos) {
            if (auth.find(':', colon + 1) != std::string_view::npos) return std::nullopt;
            port = auth.substr(colon + 1);
            auth = auth.substr(0, colon);
        }
        host = lowered(auth);
        if (!host.empty() && host.back() == '.') host.pop_back();
        if (host.empty() || host.find("..") != std::string::npos || host.find('[') != std::string::npos ||
            host.find(']') != std::string::npos) {
            return std::nullopt;
        }
    }
    // An empty port ("host:") means the default one (RFC 3986 3.2.3).
    int port_number = default_port(scheme);
    if (!port.empty()) {
        if (port.size() > 5) return std::nullopt;
        port_number = 0;
        for (char c : port) {
            if (c < '0' || c > '9') return std::nullopt;
            port_number = port_number * 10 + (c - '0');
        }
        if (port_number < 1 || port_number > 65535) return std::nullopt;
    }
    if (port_number != default_port(scheme)) host += ":" + std::to_string(port_number);
    return host;
}

// Splits "scheme://rest" with an http or https scheme.
bool split_scheme(std::string_view text, std::string* scheme, std::string_view* rest) {
    size_t sep = text.find("://");
    if (sep == std::string_view::npos) return false;
    *scheme = lowered(text.substr(0, sep));
    if (*scheme != "http" && *scheme != "https") return false;
    *rest = text.substr(sep + 3);
    return true;
}

}  // namespace

std::optional<std::string> normalized_origin(std::string_view origin) {
    std::string scheme;
    std::string_view rest;
    if (!split_scheme(origin, &scheme, &rest)) return std::nullopt;
    auto auth = normalized_authority(scheme, rest);
    if (!auth) return std::nullopt;
    return scheme + "://" + *auth;
}

std::optional<std::string> origin_of_url(std::string_view url) {
    std::string scheme;
    std::string_view rest;
    if (!split_scheme(url, &scheme, &rest)) return std::nullopt;
    size_t end = rest.find_first_of("/?#");
    auto auth = normalized_authority(scheme, rest.substr(0, end));
    if (!auth) return std::nullopt;
    return scheme + "://" + *auth;
}

std::optional<std::string> own_origin(std::string_view scheme, std::string_view host_header) {
    std::string s = lowered(scheme);
    if (s != "http" && s != "https") return std::nullopt;
    auto auth = normalized_authority(s, host_header);
    if (!auth) return std::nullopt;
    return s + "://" + *auth;
}

OriginVerdict judge_origin(std::optional<std::string_view> origin,
                           std::optional<std::string_view> referer,
                           const std::optional<std::string>& own) {
    if (origin && origin->empty()) origin.reset();
    if (referer && referer->empty()) referer.reset();
    if (!origin && !referer) return OriginVerdict::NotSent;
    std::optional<std::string> named;
    if (origin) {
        // An opaque origin (sandboxed frame, data: or file: page, some
        // redirects) is what a hostile page can always produce: never ours.
        if (*origin == "null") return OriginVerdict::CrossOrigin;
        named = normalized_origin(*origin);
    } else {
        named = origin_of_url(*referer);
    }
    if (!named) return OriginVerdict::Unreadable;
    if (!own) return OriginVerdict::Unreadable;  // a browser always sends Host
    return *named == *own ? OriginVerdict::SameOrigin : OriginVerdict::CrossOrigin;
}

const char* origin_verdict_name(OriginVerdict v) {
    switch (v) {
        case OriginVerdict::NotSent: return "not sent";
        case OriginVerdict::SameOrigin: return "same origin";
        case OriginVerdict::CrossOrigin: return "another origin";
        case OriginVerdict::Unreadable: return "unreadable";
    }
    return "?";
}

bool wildcard_match(std::string_view text, std::string_view pattern) {
    // Iterative glob with one backtrack point: linear enough for host names.
    size_t t = 0, p = 0, star = std::string_view::npos, mark = 0;
    while (t < text.size()) {
        if (p < pattern.size() && (pattern[p] == '?' || lower(pattern[p]) == lower(text[t]))) {
            ++t;
            ++p;
        } else if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            mark = t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

namespace {

// 16 bytes of an IPv4 or IPv6 literal (IPv4 as IPv4-mapped IPv6), or false.
bool ip_bytes(std::string_view text, unsigned char out[16]) {
    std::string s(text);
    in_addr v4{};
    if (::inet_pton(AF_INET, s.c_str(), &v4) == 1) {
        std::memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        std::memcpy(out + 12, &v4, 4);
        return true;
    }
    return ::inet_pton(AF_INET6, s.c_str(), out) == 1;
}

bool is_loopback(const unsigned char ip[16]) {
    static const unsigned char v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(ip, v6_loopback, 16) == 0) return true;
    return std::memcmp(ip, v4_mapped, 12) == 0 && ip[12] == 127;
}

}  // namespace

bool host_names_vhost(std::string_view host, const VhostNames& names) {
    if (host.empty()) return false;
    std::string h = lowered(host);
    if (h == lowered(names.server_name)) return true;
    for (const std::string& alias : names.aliases) {
        if (h == lowered(alias)) return true;
    }
    for (const std::string& pattern : names.wild_aliases) {
        if (wildcard_match(h, pattern)) return true;
    }
    unsigned char local[16];
    bool local_known = ip_bytes(names.local_ip, local);
    unsigned char asked[16];
    if (ip_bytes(h, asked)) {
        // A browser sends an IP literal only when its URL names that address,
        // so no DNS answer is involved: accept the address the connection
        // really arrived on (what `curl http://127.0.0.1/...` sends).
        return local_known && std::memcmp(asked, local, 16) == 0;
    }
    // The browser resolves "localhost" itself (RFC 6761), never through the
    // attacker's DNS; it reaches us only over loopback.
    return h == "localhost" && local_known && is_loopback(local);
}

}  // namespace fpmr
