// Warm-up URL paths (FpmReplicaWarmup /path ...): before a new master takes
// traffic the supervisor requests each path once through httpd itself (its
// rewrite rules, handlers and pinning, as a user's request), and a header
// carrying a one-time token steers that request to the starting master,
// which steering would otherwise never choose. Here: the request's bytes,
// the header's format, the token's life in the trusted block and its check
// in the children. No sockets and no httpd types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shared_state.h"

namespace fpmr {

// The request header. httpd children take it off every request they map to
// a replica balancer, so it never reaches PHP.
constexpr const char* kWarmupHeader = "FPM-Replica-Warmup";

// 128 random bits, made by the supervisor for one warm-up; zero is none.
struct WarmupToken {
    uint64_t high = 0;
    uint64_t low = 0;
    bool empty() const { return high == 0 && low == 0; }
};

// "<slot>.<32 lower-case hex digits>".
std::string warmup_header_value(int slot, const WarmupToken& token);
struct WarmupHeader {
    int slot;
    WarmupToken token;
};
// nullopt unless exactly that shape, with a slot below `slot_count` and a
// token that is not zero.
std::optional<WarmupHeader> parse_warmup_header(std::string_view value, int slot_count);

// The supervisor's side: the token a member's master may be reached with
// while its warm-up requests its URL paths, then none.
void publish_warmup_token(TrustedSlot& slot, const WarmupToken& token);
void withdraw_warmup_token(TrustedSlot& slot);
// A child's side: whether `header` names this member's current token.
bool warmup_token_admits(const TrustedSlot& slot, const WarmupToken& token);

// GET `path` over HTTP/1.1 to httpd, `Host: host`, with the header, closed
// after the answer.
std::string warmup_url_request(const std::string& host, const std::string& path,
                               const std::string& header_value);
// The status code of an HTTP response's status line ("HTTP/1.x NNN ..."
// or "HTTP/1.x NNN\r"), 0 when `reply` does not begin with one.
int parse_http_status(std::string_view reply);

}  // namespace fpmr
