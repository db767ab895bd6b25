// The checks a control request (POST to the status handler) must pass
// besides access control: the nonce compared in constant time, the origin a
// browser names (cross-site requests), and the Host it asked for (DNS
// rebinding). Pure functions of the request's strings, so they are
// unit-tested without httpd.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fpmr {

// True when `supplied` equals `secret`. The time taken depends only on the
// secret's length: no early exit on the first differing byte or on a length
// mismatch, so the answer time tells an attacker nothing about how much of a
// guess was right.
bool constant_time_equal(std::string_view secret, std::string_view supplied);

// "scheme://host[:port]" in one spelling: lower case, no trailing dot on the
// host, no port where it is the scheme's default (80, 443). Nullopt for
// anything that is not an http or https origin (including "null").
std::optional<std::string> normalized_origin(std::string_view origin);

// The origin part of an absolute http(s) URL (a Referer), normalised.
std::optional<std::string> origin_of_url(std::string_view url);

// The origin the client used: `scheme` ("http" or "https") plus the Host
// header as sent. Nullopt when the Host header is missing or malformed.
std::optional<std::string> own_origin(std::string_view scheme, std::string_view host_header);

enum class OriginVerdict {
    NotSent,      // neither Origin nor Referer: not a browser form (the CLI)
    SameOrigin,
    CrossOrigin,  // another origin, or an opaque one ("null")
    Unreadable,   // a header we cannot parse: treated as cross-origin
};

// Decides on the Origin header when there is one, else on the Referer (empty
// values count as absent). `own` is own_origin() of the request.
OriginVerdict judge_origin(std::optional<std::string_view> origin,
                           std::optional<std::string_view> referer,
                           const std::optional<std::string>& own);

const char* origin_verdict_name(OriginVerdict v);

// The names a virtual host answers to, and the address the connection came in on.
struct VhostNames {
    std::string server_name;
    std::vector<std::string> aliases;       // ServerAlias without wildcards
    std::vector<std::string> wild_aliases;  // ServerAlias with * or ?
    std::string local_ip;                   // the connection's local address, "127.0.0.1", "::1"
};

// True when `host` (httpd's r->hostname: lower case, without port, brackets
// or trailing dot) is a name of the vhost: its ServerName, one of its
// aliases (wildcards as httpd matches them), an IP literal equal to the
// connection's local address, or "localhost" on a loopback connection. A
// rebinding attack always sends the attacker's own DNS name, which is none
// of these.
bool host_names_vhost(std::string_view host, const VhostNames& names);

// httpd's ServerAlias wildcard match: '*' any run of characters, '?' one,
// case-insensitive.
bool wildcard_match(std::string_view text, std::string_view pattern);

}  // namespace fpmr
