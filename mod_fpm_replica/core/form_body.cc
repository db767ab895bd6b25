// application/x-www-form-urlencoded bodies: percent-decoding and bounds.
#include "form_body.h"

namespace fpmr {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decodes one name or value; false when it is malformed or decodes to more
// than `max_length` bytes (checked as it grows, so a long input costs no
// more than `max_length` of memory).
bool decode_component(std::string_view in, size_t max_length, std::string* out) {
    out->clear();
    for (size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (in.size() - i < 3) return false;  // fewer than two characters after it
            int high = hex_value(in[i + 1]);
            int low = hex_value(in[i + 2]);
            if (high < 0 || low < 0) return false;
            c = static_cast<char>(high * 16 + low);
            i += 2;
        }
        if (c == '\0' || out->size() >= max_length) return false;
        *out += c;
    }
    return true;
}

}  // namespace

std::optional<std::map<std::string, std::string>> parse_form_body(
    std::string_view body, const FormBodyLimits& limits) {
    std::map<std::string, std::string> fields;
    size_t pairs = 0;
    while (!body.empty()) {
        size_t amp = body.find('&');
        std::string_view segment = body.substr(0, amp);
        body.remove_prefix(amp == std::string_view::npos ? body.size() : amp + 1);
        if (segment.empty()) continue;
        if (++pairs > limits.max_pairs) return std::nullopt;
        size_t eq = segment.find('=');
        std::string name, value;
        if (!decode_component(segment.substr(0, eq), limits.max_key_length, &name) ||
            name.empty()) {
            return std::nullopt;
        }
        if (eq != std::string_view::npos &&
            !decode_component(segment.substr(eq + 1), limits.max_value_length, &value)) {
            return std::nullopt;
        }
        fields.emplace(std::move(name), std::move(value));  // the first one stays
    }
    return fields;
}

}  // namespace fpmr
