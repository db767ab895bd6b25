#include "warmup_urls.h"

#include <charconv>

namespace fpmr {

namespace {

constexpr char kHex[] = "0123456789abcdef";

void append_hex(std::string* out, uint64_t value) {
    for (int shift = 60; shift >= 0; shift -= 4) out->push_back(kHex[(value >> shift) & 0xf]);
}

bool parse_hex(std::string_view text, uint64_t* out) {
    if (text.size() != 16) return false;
    uint64_t value = 0;
    for (char c : text) {
        int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (digit < 0) return false;
        value = value << 4 | static_cast<uint64_t>(digit);
    }
    *out = value;
    return true;
}

}  // namespace

std::string warmup_header_value(int slot, const WarmupToken& token) {
    std::string value = std::to_string(slot) + ".";
    append_hex(&value, token.high);
    append_hex(&value, token.low);
    return value;
}

std::optional<WarmupHeader> parse_warmup_header(std::string_view value, int slot_count) {
    size_t dot = value.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot > 6 || value.size() != dot + 1 + 32) {
        return std::nullopt;
    }
    WarmupHeader header{};
    // Digits only, no leading zero: one spelling per slot, as formatted.
    if (value[0] < '0' || value[0] > '9' || (value[0] == '0' && dot > 1)) return std::nullopt;
    auto [end, ec] = std::from_chars(value.data(), value.data() + dot, header.slot);
    if (ec != std::errc() || end != value.data() + dot || header.slot < 0 || header.slot >= slot_count) {
        return std::nullopt;
    }
    if (!parse_hex(value.substr(dot + 1, 16), &header.token.high) ||
        !parse_hex(value.substr(dot + 17, 16), &header.token.low) || header.token.empty()) {
        return std::nullopt;
    }
    return header;
}

// The supervisor writes the token before it sends the request that carries
// it, and clears it when the warm-up ends; a child that reads it while it
// changes sees a mismatch and steers the request as any other.
void publish_warmup_token(TrustedSlot& slot, const WarmupToken& token) {
    slot.warmup_token_high.store(token.high, std::memory_order_release);
    slot.warmup_token_low.store(token.low, std::memory_order_release);
}

void withdraw_warmup_token(TrustedSlot& slot) {
    slot.warmup_token_high.store(0, std::memory_order_release);
    slot.warmup_token_low.store(0, std::memory_order_release);
}

bool warmup_token_admits(const TrustedSlot& slot, const WarmupToken& token) {
    uint64_t high = slot.warmup_token_high.load(std::memory_order_acquire);
    uint64_t low = slot.warmup_token_low.load(std::memory_order_acquire);
    // No early exit on the first differing word.
    return !token.empty() && ((high ^ token.high) | (low ^ token.low)) == 0;
}

std::string warmup_url_request(const std::string& host, const std::string& path,
                               const std::string& header_value) {
    return "GET " + path + " HTTP/1.1\r\nHost: " + host +
           "\r\nUser-Agent: mod_fpm_replica warm-up\r\n" + kWarmupHeader + ": " + header_value +
           "\r\nConnection: close\r\n\r\n";
}

int parse_http_status(std::string_view reply) {
    if (reply.size() < 13 || reply.substr(0, 7) != "HTTP/1." || reply[8] != ' ') return 0;
    int status = 0;
    auto [end, ec] = std::from_chars(reply.data() + 9, reply.data() + 12, status);
    if (ec != std::errc() || end != reply.data() + 12 || status < 100 || status > 599) return 0;
    if (reply[12] != ' ' && reply[12] != '\r') return 0;
    return status;
}

}  // namespace fpmr
