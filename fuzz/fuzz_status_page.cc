// The status GET's query and Accept header (any client that reaches the
// handler sends them), and the page's escaping of values a deploy user or a
// configuration can choose (release directory names, replica names).
#include <string>

#include "fuzz_input.h"
#include "status_format.h"
#include "status_html.h"

using namespace fpmr;
using fpmr::fuzz::violated;

namespace {

size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

void check_format(const std::string& query, const std::string& accept) {
    for (const char* type : {"text/html", "application/json", "text/plain"}) {
        double w = accept_weight(accept, type);
        if (!(w >= 0 && w <= 1)) violated("an Accept weight outside 0..1");
    }
    StatusFormat with = choose_status_format(query, accept);
    StatusFormat without = choose_status_format(query, std::nullopt);
    // Accept only ever turns JSON into HTML; format= is not for it to undo.
    if (without != StatusFormat::Json && with != without) violated("Accept overrode format=");
    if (with == StatusFormat::Prometheus && without != StatusFormat::Prometheus) {
        violated("Accept chose Prometheus");
    }
}

void check_escape(const std::string& text) {
    std::string escaped = html_escape(text);
    if (escaped.find_first_of("<>\"'") != std::string::npos) violated("markup survived html_escape");
    // Every '&' starts one of the five references html_escape writes.
    for (size_t at = escaped.find('&'); at != std::string::npos; at = escaped.find('&', at + 1)) {
        std::string_view rest = std::string_view(escaped).substr(at);
        bool known = false;
        for (std::string_view ref : {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"}) {
            if (rest.substr(0, ref.size()) == ref) known = true;
        }
        if (!known) violated("a bare '&' after html_escape");
    }
}

void check_page(const std::string& name, const std::string& path) {
    VhostStatus v;
    v.vhost = name;
    v.release = path;
    v.nonce = path;
    ReplicaStatus r;
    r.name = name;
    r.socket = path;
    r.reason = name;
    r.release = path;
    v.replicas = {r, r};
    std::string page = render_status_html(v, "n");
    // Only the page's own elements, whatever the values.
    if (count(page, "<script") != 1 || count(page, "<style") != 1) violated("an injected element");
    if (count(page, "<tr data-replica=") != 2) violated("a row too many or too few");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto parts = fpmr::fuzz::split_parts(fpmr::fuzz::as_text(data, size), 2);
    check_format(parts[0], parts[1]);
    check_escape(parts[0]);
    check_escape(parts[1]);
    check_page(parts[0], parts[1]);
    return 0;
}
