// Parsing of an application/x-www-form-urlencoded request body (the status
// handler's POST action=...&replica=...&release=...). The body comes from any
// client that reaches the handler, so every size is bounded and anything
// ambiguous is refused rather than guessed at. No httpd types.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace fpmr {

struct FormBodyLimits {
    size_t max_pairs = 16;          // the status form has three fields
    size_t max_key_length = 64;     // decoded bytes
    size_t max_value_length = 512;  // decoded bytes
};

// name -> value, both percent-decoded with '+' as a space. A name given
// twice keeps its FIRST value (what the status handler did with httpd's
// ap_parse_form_data), so appending a pair to a body cannot override one.
// A segment without '=' is a name with an empty value; empty segments
// ("a=1&&b=2", a trailing '&') are skipped.
//
// std::nullopt when the body is malformed: a '%' not followed by two hex
// digits, a decoded NUL byte (C strings downstream would cut the value
// short), an empty name, or more pairs or longer names or values than
// `limits` allow.
std::optional<std::map<std::string, std::string>> parse_form_body(
    std::string_view body, const FormBodyLimits& limits = {});

}  // namespace fpmr
