#include "status_format.h"

#include <cstdlib>
#include <string>

namespace fpmr {

namespace {

std::string_view trimmed(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool iequal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

// RFC 9110 qvalue: "0", "0.xxx", "1", "1.000". Anything else is malformed
// and the range it belongs to is ignored rather than guessed at.
std::optional<double> parse_qvalue(std::string_view text) {
    if (text.empty() || text.size() > 5) return std::nullopt;
    if (text[0] != '0' && text[0] != '1') return std::nullopt;
    if (text.size() > 1) {
        if (text[1] != '.') return std::nullopt;
        for (size_t i = 2; i < text.size(); ++i) {
            if (text[i] < '0' || text[i] > '9') return std::nullopt;
            if (text[0] == '1' && text[i] != '0') return std::nullopt;
        }
    }
    return std::strtod(std::string(text).c_str(), nullptr);
}

}  // namespace

double accept_weight(std::string_view accept, std::string_view media_type) {
    if (trimmed(accept).empty()) return 1.0;
    size_t slash = media_type.find('/');
    std::string_view type = media_type.substr(0, slash);
    std::string_view subtype = slash == std::string_view::npos ? "" : media_type.substr(slash + 1);
    int best_specificity = -1;  // 2: type/subtype, 1: type/*, 0: */*
    double weight = 0;
    while (!accept.empty()) {
        size_t comma = accept.find(',');
        std::string_view element = accept.substr(0, comma);
        accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
        size_t semicolon = element.find(';');
        std::string_view range = trimmed(element.substr(0, semicolon));
        double q = 1.0;
        bool malformed = false;
        while (semicolon != std::string_view::npos) {
            element = element.substr(semicolon + 1);
            semicolon = element.find(';');
            std::string_view param = trimmed(element.substr(0, semicolon));
            if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
                auto parsed = parse_qvalue(param.substr(2));
                if (!parsed) malformed = true;
                else q = *parsed;
            }
        }
        size_t range_slash = range.find('/');
        if (malformed || range_slash == std::string_view::npos) continue;
        std::string_view range_type = range.substr(0, range_slash);
        std::string_view range_subtype = range.substr(range_slash + 1);
        int specificity;
        if (range_type == "*" && range_subtype == "*") specificity = 0;
        else if (iequal(range_type, type) && range_subtype == "*") specificity = 1;
        else if (iequal(range_type, type) && iequal(range_subtype, subtype)) specificity = 2;
        else continue;
        if (specificity > best_specificity) {
            best_specificity = specificity;
            weight = q;
        } else if (specificity == best_specificity && q > weight) {
            weight = q;
        }
    }
    return weight;
}

StatusFormat choose_status_format(std::optional<std::string_view> query,
                                  std::optional<std::string_view> accept) {
    std::string_view args = query.value_or("");
    while (!args.empty()) {
        size_t amp = args.find('&');
        std::string_view segment = args.substr(0, amp);
        args = amp == std::string_view::npos ? std::string_view() : args.substr(amp + 1);
        if (segment == "format=prometheus") return StatusFormat::Prometheus;
        if (segment == "format=html") return StatusFormat::Html;
        if (segment == "format=json") return StatusFormat::Json;
    }
    if (!accept) return StatusFormat::Json;
    double html = accept_weight(*accept, "text/html");
    double json = accept_weight(*accept, "application/json");
    return html > json ? StatusFormat::Html : StatusFormat::Json;
}

}  // namespace fpmr
