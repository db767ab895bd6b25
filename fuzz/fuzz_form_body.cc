// The status handler's POST body, from any client that reaches the handler
// (before the nonce is even looked at, the body may be read).
#include <string>

#include "form_body.h"
#include "fuzz_input.h"

using namespace fpmr;
using fpmr::fuzz::violated;

namespace {

std::string percent_encode(const std::string& s) {
    static const char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        out += '%';
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
    return out;
}

void check(std::string_view body, const FormBodyLimits& limits) {
    auto fields = parse_form_body(body, limits);
    if (!fields) return;
    if (fields->size() > limits.max_pairs) violated("more pairs than the limit");
    std::string again;
    for (const auto& [name, value] : *fields) {
        if (name.empty() || name.size() > limits.max_key_length ||
            value.size() > limits.max_value_length) {
            violated("a name or value outside the limits");
        }
        if (name.find('\0') != std::string::npos || value.find('\0') != std::string::npos) {
            violated("a decoded NUL byte");
        }
        again += (again.empty() ? "" : "&") + percent_encode(name) + "=" + percent_encode(value);
    }
    // What it decoded, encoded again in full, decodes to the same fields.
    auto round_trip = parse_form_body(again, limits);
    if (!round_trip || *round_trip != *fields) violated("the fields do not survive re-encoding");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view body = fpmr::fuzz::as_text(data, size);
    check(body, FormBodyLimits{});
    FormBodyLimits small;
    small.max_pairs = 3;
    small.max_key_length = 4;
    small.max_value_length = 8;
    check(body, small);
    return 0;
}
