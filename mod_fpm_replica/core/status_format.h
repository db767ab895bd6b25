// Which representation of the status document a GET asks for: JSON (the
// default, what the CLI and scripts read), Prometheus text, or the HTML page
// for people. Decided from the query string and the Accept header alone, so
// it is unit-tested without httpd.
#pragma once

#include <optional>
#include <string_view>

namespace fpmr {

enum class StatusFormat { Json, Prometheus, Html };

// `?format=json|prometheus|html` wins (the first such segment of `query`,
// compared as sent); otherwise HTML only when `accept` weighs text/html
// above application/json, as a browser's Accept does. No Accept, `*/*`, or
// a tie stays JSON: a script that asks for nothing in particular keeps
// getting what it always got.
StatusFormat choose_status_format(std::optional<std::string_view> query,
                                  std::optional<std::string_view> accept);

// The weight (0..1) `accept` gives `media_type` ("text/html"): that of the
// most specific range matching it (type/subtype, then type/*, then */*),
// 0 when none does. An absent or empty Accept accepts everything (1).
double accept_weight(std::string_view accept, std::string_view media_type);

}  // namespace fpmr
